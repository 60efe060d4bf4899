import VitqTensor

/// Changes an op's output in place during a traced forward (finite-difference checks). Called
/// with the op output's name, e.g. `blocks.3.attn.matmul1`.
typealias ActivationHook = (_ name: String, _ values: UnsafeMutablePointer<Float>, _ shape: [Int]) -> Void

/// What one forward pass reports and keeps: activations for the observer, op outputs offered
/// to a hook (which may change them in place), and, with `keep`, the activations the backward
/// pass needs. Plain inference has none of them and may run fused ops.
struct ForwardContext {
    let observer: ForwardObserver?
    let hook: ActivationHook?
    let keep: Bool

    init(observer: ForwardObserver? = nil, hook: ActivationHook? = nil, keep: Bool = false) {
        self.observer = observer; self.hook = hook; self.keep = keep
    }

    /// Whether an observer is attached.
    var observing: Bool { observer != nil }
    /// fp32 with every intermediate in the open, as a hook or the backward pass needs.
    var traced: Bool { hook != nil || keep }
    /// Whether ops that offer it may take their LayerNorm (and GELU) into their own passes: only
    /// when nothing is traced or observed, since fused ops never write the intermediate rows.
    var fuses: Bool { !traced && !observing }

    /// Whether the observer wants tap `name`.
    func wants(_ name: String) -> Bool { observer?.wants(name) ?? false }

    /// Reports an activation to the observer when it wants it.
    func tap(_ name: String, _ p: UnsafePointer<Float>, _ shape: [Int]) {
        if let o = observer, o.wants(name) { o.observe(name, UnsafeBufferPointer(start: p, count: shape.reduce(1, *)), shape: shape) }
    }

    /// An op's output: offered to the hook (which may change it), then tapped.
    func output(_ name: String, _ p: UnsafeMutablePointer<Float>, _ shape: [Int]) {
        hook?(name, p, shape)
        tap(name, p, shape)
    }

    /// A copy of `t` when the backward pass needs it.
    func saved(_ t: Tensor) -> Tensor? { keep ? t.copy() : nil }
}
