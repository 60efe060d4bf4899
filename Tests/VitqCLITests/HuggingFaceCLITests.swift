import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// A Hugging Face `ViTForImageClassification` checkpoint through the CLI (issue 18): the ViT-Tiny
/// fixture re-keyed by Python to Hugging Face's names (q, k and v split), with its config.json and
/// preprocessor_config.json.
final class HuggingFaceCLITests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Writes model.safetensors, config.json and preprocessor_config.json in `folder`; `extra`
    /// adds a stray tensor.
    func makeHuggingFaceViTTiny(in folder: String, extra: Bool = false) throws -> String {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let script = """
        import json, numpy as np
        from safetensors.numpy import load_file, save_file
        t = load_file('\(Fixtures.vitTiny)')
        E, L = 192, 12
        hf = {'vit.embeddings.cls_token': t['cls_token'], 'vit.embeddings.position_embeddings': t['pos_embed'],
              'vit.embeddings.patch_embeddings.projection.weight': t['patch_embed.proj.weight'],
              'vit.embeddings.patch_embeddings.projection.bias': t['patch_embed.proj.bias'],
              'vit.layernorm.weight': t['norm.weight'], 'vit.layernorm.bias': t['norm.bias'],
              'classifier.weight': t['head.weight'], 'classifier.bias': t['head.bias']}
        for i in range(L):
            b, h = f'blocks.{i}.', f'vit.encoder.layer.{i}.'
            for j, n in enumerate(['query', 'key', 'value']):
                hf[h + f'attention.attention.{n}.weight'] = np.ascontiguousarray(t[b + 'attn.qkv.weight'][j * E:(j + 1) * E])
                hf[h + f'attention.attention.{n}.bias'] = np.ascontiguousarray(t[b + 'attn.qkv.bias'][j * E:(j + 1) * E])
            for src, dst in [('attn.proj', 'attention.output.dense'), ('mlp.fc1', 'intermediate.dense'), ('mlp.fc2', 'output.dense'),
                             ('norm1', 'layernorm_before'), ('norm2', 'layernorm_after')]:
                hf[h + dst + '.weight'] = t[b + src + '.weight']; hf[h + dst + '.bias'] = t[b + src + '.bias']
        if \(extra ? "True" : "False"):
            hf['vit.pooler.dense.weight'] = np.zeros((E, E), np.float32)
        save_file(hf, 'model.safetensors', metadata={'format': 'pt'})
        json.dump({'architectures': ['ViTForImageClassification'], 'model_type': 'vit', 'hidden_size': E,
                   'num_hidden_layers': L, 'num_attention_heads': 3, 'intermediate_size': 768, 'hidden_act': 'gelu',
                   'layer_norm_eps': 1e-6, 'image_size': 224, 'patch_size': 16, 'num_channels': 3, 'qkv_bias': True,
                   'hidden_dropout_prob': 0.0, 'attention_probs_dropout_prob': 0.0, 'encoder_stride': 16,
                   'id2label': {str(k): f'class{k}' for k in range(1000)}}, open('config.json', 'w'))
        json.dump({'image_processor_type': 'ViTImageProcessor', 'do_resize': True, 'size': {'shortest_edge': 248},
                   'resample': 3, 'do_center_crop': True, 'crop_size': {'height': 224, 'width': 224},
                   'do_rescale': True, 'rescale_factor': 1 / 255, 'do_normalize': True,
                   'image_mean': [0.5, 0.5, 0.5], 'image_std': [0.5, 0.5, 0.5]}, open('preprocessor_config.json', 'w'))
        """
        try PythonImages.run(script, in: folder)
        return folder + "/model.safetensors"
    }

    /// The Hugging Face file gives the timm file's logits and preprocessing, and `quantize` the
    /// timm file's tensors, in process and on 2 workers: the files differ only in provenance (the
    /// source's name and sha256) and in the spec's note of where its config came from.
    func testAHuggingFaceViTGivesTheTimmLogitsAndQuantizesToTheSameTensors() throws {
        try Fixtures.require()
        let hf = try makeHuggingFaceViTTiny(in: dir + "/hf")
        let inspect = try CLIRunner.run(["inspect", hf, "--json"]).jsonObject()
        let timmInspect = try CLIRunner.run(["inspect", Fixtures.vitTiny, "--json"]).jsonObject()
        XCTAssertEqual(inspect["format"] as? String, "safetensors")
        XCTAssertEqual(inspect["family"] as? String, "vit")
        XCTAssertEqual(inspect["config_source"] as? String ?? inspect["configSource"] as? String, dir + "/hf/config.json")
        let line = { (r: CLIRunner.Result) in r.stdout.split(separator: "\n").first { $0.hasPrefix("preprocess") }.map(String.init) }
        let hfLine = line(try CLIRunner.run(["inspect", hf])), timmLine = line(try CLIRunner.run(["inspect", Fixtures.vitTiny]))
        XCTAssertNotNil(hfLine)
        XCTAssertEqual(hfLine, timmLine, "248 → 224 bicubic, mean = std = 0.5")
        XCTAssertEqual(inspect["parameters"] as? Int, timmInspect["parameters"] as? Int)
        var logits: [[Float]] = []
        for model in [Fixtures.vitTiny, hf] {
            let dump = dir + "/\(logits.count).npy"
            _ = try CLIRunner.run(["eval", model, "--data", Fixtures.even500Images, "--limit", "16", "--dump-logits", dump, "--json"]).jsonObject()
            logits.append(try NpyArray(path: dump, expect: .float32).floats())
        }
        XCTAssertLessThan(relativeError(logits[1], logits[0]), 1e-5, "Hugging Face and timm layouts of one model")

        var outs: [String] = []
        for (model, workers) in [(Fixtures.vitTiny, [String]()), (hf, []), (hf, ["--workers", "2"])] {
            let out = dir + "/q\(outs.count).safetensors"
            let r = try CLIRunner.run(["quantize", model, "--data", Fixtures.even500Images, "--calib", "8", "--recipe", "ptq4vit-fast",
                                       "--out", out] + workers)
            XCTAssertEqual(r.status, 0, r.stderr)
            outs.append(out)
        }
        XCTAssertEqual(try SHA256.hex(ofFile: outs[2]), try SHA256.hex(ofFile: outs[1]), "2 workers write the in-process bytes")
        let a = try TensorFile(path: outs[0]), b = try TensorFile(path: outs[1])
        XCTAssertEqual(a.names, b.names)
        for n in a.names { XCTAssertEqual(Data(try a.rawBytes(n)), Data(try b.rawBytes(n)), n) }
        let differing = Set(a.metadata.keys).union(b.metadata.keys).filter { a.metadata[$0] != b.metadata[$0] }
        XCTAssertTrue(differing.isSubset(of: ["source_name", "source_sha256", "model"]), "\(differing.sorted())")
    }

    func testAStrayTensorAMissingConfigAndAnUnknownActivationAreRefusedInOneLine() throws {
        try Fixtures.require()
        func refused(_ model: String, _ expect: [String]) throws {
            let r = try CLIRunner.run(["inspect", model])
            XCTAssertEqual(r.status, 1, r.stdout)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            for e in expect { XCTAssertTrue(r.stderr.contains(e), "\(e) in: \(r.stderr)") }
        }
        try refused(try makeHuggingFaceViTTiny(in: dir + "/extra", extra: true), ["vit.pooler.dense.weight", "unexpected"])
        let noConfig = try makeHuggingFaceViTTiny(in: dir + "/noconfig")
        try FileManager.default.removeItem(atPath: dir + "/noconfig/config.json")
        try refused(noConfig, ["config.json", "missing"])
        let relu = try makeHuggingFaceViTTiny(in: dir + "/relu")
        let config = dir + "/relu/config.json"
        let text = try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "\"gelu\"", with: "\"relu\"")
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        try refused(relu, ["config.json", "hidden_act"])
    }
}
