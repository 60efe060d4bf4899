import VitqDistributed
import VitqRuntime
import XCTest

/// `vitq worker` refuses, in one line, a JOB whose model family this build does not know
/// (WorkerOptions' default ``WorkerSettings/refusal``, asked of the model-family registry).
final class WorkerFamilyTests: XCTestCase {
    func job(family: String) -> Job {
        let sha = String(repeating: "ab", count: 32)
        return Job(model: .path(path: "/m", sha256: sha), modelSpec: JobModelSpec(family: family, spec: "{}"),
                   images: .path(path: "/i", sha256: sha), recipe: "{}", shards: [ShardRange(0..<4)])
    }

    func testAJobForAnUnknownFamilyIsRefusedAndKnownOnesAreTaken() {
        let options = WorkerOptions(endpoint: "ipc:///tmp/c.ipc", name: "w1")
        XCTAssertEqual(options.refusal(job(family: "convnext")), "modelSpec: unknown model family 'convnext' (this worker knows torch-vit, vit, swin)")
        XCTAssertNil(options.refusal(job(family: "vit")))
        XCTAssertNil(options.refusal(job(family: "swin")))
        XCTAssertNil(options.refusal(job(family: "torch-vit")))
    }
}
