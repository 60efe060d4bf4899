/// Receives named activations during a forward pass (golden tests, calibration taps).
public protocol ForwardObserver: AnyObject {
    /// Whether `name` should be reported; unreported taps cost nothing.
    func wants(_ name: String) -> Bool
    /// Called with a tapped activation. The buffer is valid only during the call.
    func observe(_ name: String, _ values: UnsafeBufferPointer<Float>, shape: [Int])
}
