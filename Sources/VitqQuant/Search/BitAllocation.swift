/// Liu et al.'s bit allocation (ALGORITHMS.md §2, mixed precision), as a pure computation: each
/// module m takes one of the candidate widths b, costing `weightParameters_m · b` weight bits
/// and `activationElements_m · b` activation bits, with a perturbation Ω_m(b); the allocation
/// minimises Σ Ω_m(b_m) with the average weight bits and the average activation bits both at
/// most the budget.
///
/// A multiple-choice knapsack over the weight bits, solved exactly by dynamic programming on
/// cost units (the greatest common divisor of every module's extra cost over the narrowest
/// width; coarser, rounding costs up so that the budget still holds, if that would exceed
/// ``maxStates`` states). When the weight-optimal allocation's activations are over budget,
/// their cost enters the objective with a Lagrange multiplier λ, the smallest that meets it
/// (found by doubling, then 60 bisection steps: a fixed sequence of double operations, so the
/// same inputs give the same allocation on any machine).
public enum BitAllocation {
    /// One module's sizes and its perturbation at each candidate width.
    public struct Module: Equatable, Sendable {
        public var name: String
        public var weightParameters: Int
        public var activationElements: Double
        /// Ω at each candidate width, in the order of the widths.
        public var omega: [Double]
        public init(name: String, weightParameters: Int, activationElements: Double, omega: [Double]) {
            self.name = name; self.weightParameters = weightParameters; self.activationElements = activationElements; self.omega = omega
        }
    }

    /// A point of the (size, Ω) Pareto frontier.
    public struct Point: Equatable, Sendable {
        public var averageWeightBits: Double
        public var omega: Double
    }

    /// The allocation: a width per module, its averages and Ω, and the frontier.
    public struct Result: Equatable, Sendable {
        public var bits: [Int]
        public var averageWeightBits: Double
        public var averageActivationBits: Double
        public var omega: Double
        /// The multiplier on activation bits (0 when the weight budget alone was enough).
        public var lambda: Double
        /// Every (average weight bits, least Ω) allocation, over all sizes, that no cheaper one
        /// beats, cheapest first.
        public var frontier: [Point]
    }

    /// The most dynamic-programming states per module.
    public static let maxStates = 1 << 20

    /// The allocation of `modules` over `widths` (ascending) for an average of `averageBits`.
    public static func allocate(_ modules: [Module], widths: [Int], averageBits: Double) -> Result {
        precondition(!modules.isEmpty && widths.count >= 1 && modules.allSatisfy { $0.omega.count == widths.count })
        let lo = widths[0]
        let params = modules.reduce(0) { $0 + $1.weightParameters }
        let elements = modules.reduce(0.0) { $0 + $1.activationElements }
        // Extra weight bits over the narrowest width, in units.
        var unit = 0
        for m in modules { for b in widths { unit = gcd(unit, m.weightParameters * (b - lo)) } }
        let capacityBits = Int(((averageBits - Double(lo)) * Double(params)).rounded(.down))
        let fullBits = params * (widths.last! - lo)
        if unit == 0 { unit = 1 }
        if fullBits / unit + 1 > maxStates { unit = (fullBits + maxStates - 2) / (maxStates - 1) }
        let capacity = max(0, capacityBits / unit), full = fullBits / unit
        let cost = modules.map { m in widths.map { b in (m.weightParameters * (b - lo) + unit - 1) / unit } }

        func solve(_ lambda: Double, capacity: Int = capacity) -> (choice: [Int], best: [Double]) {
            var best = [Double](repeating: .infinity, count: capacity + 1)
            best[0] = 0
            var picks = [[Int8]](repeating: [], count: modules.count)
            for (i, m) in modules.enumerated() {
                var next = [Double](repeating: .infinity, count: capacity + 1)
                var pick = [Int8](repeating: -1, count: capacity + 1)
                for (c, b) in widths.enumerated() {
                    let w = cost[i][c], value = m.omega[c] + lambda * m.activationElements * Double(b - lo)
                    guard w <= capacity else { continue }
                    for s in 0...(capacity - w) where best[s] < .infinity {
                        let v = best[s] + value
                        if v < next[s + w] { next[s + w] = v; pick[s + w] = Int8(c) }
                    }
                }
                best = next; picks[i] = pick
            }
            // The best total at any cost within the capacity (ties: the cheapest).
            var end = 0
            for s in 0...capacity where best[s] < best[end] { end = s }
            var choice = [Int](repeating: 0, count: modules.count)
            for i in stride(from: modules.count - 1, through: 0, by: -1) {
                let c = Int(picks[i][end]); choice[i] = c; end -= cost[i][c]
            }
            return (choice, best)
        }
        func averages(_ choice: [Int]) -> (weights: Double, activations: Double, omega: Double) {
            var w = 0.0, a = 0.0, o = 0.0
            for (i, m) in modules.enumerated() {
                let b = Double(widths[choice[i]])
                w += Double(m.weightParameters) * b; a += m.activationElements * b; o += m.omega[choice[i]]
            }
            return (w / Double(max(1, params)), elements > 0 ? a / elements : Double(widths[choice[0]]), o)
        }

        let plain = solve(0).choice
        let table = solve(0, capacity: full).best
        var frontier: [Point] = []
        for s in 0...full where table[s] < (frontier.last?.omega ?? .infinity) {
            frontier.append(Point(averageWeightBits: Double(lo) + Double(s * unit) / Double(max(1, params)), omega: table[s]))
        }
        var choice = plain, lambda = 0.0
        if averages(plain).activations > averageBits {
            // Smallest λ meeting the activation budget: double, then bisect.
            let spread = modules.reduce(0.0) { $0 + ($1.omega.max()! - $1.omega.min()!) }
            var hi = max(spread, 1e-300) / max(elements, 1) * 1e-6, lowest = 0.0
            var found = solve(hi).choice
            var doublings = 0
            while averages(found).activations > averageBits && doublings < 2000 { lowest = hi; hi *= 2; found = solve(hi).choice; doublings += 1 }
            for _ in 0..<60 {
                let mid = (lowest + hi) / 2
                let c = solve(mid).choice
                if averages(c).activations > averageBits { lowest = mid } else { hi = mid; found = c }
            }
            choice = found; lambda = hi
        }
        let a = averages(choice)
        return Result(bits: choice.map { widths[$0] }, averageWeightBits: a.weights, averageActivationBits: a.activations,
                      omega: a.omega, lambda: lambda, frontier: frontier)
    }

    static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? abs(a) : gcd(b, a % b) }
}
