import Foundation
import Locking

/// Where sessions read the time (Unix seconds): the system clock, or a manual one in tests.
public protocol ServiceClock: Sendable {
    func now() -> Double
}

public struct SystemClock: ServiceClock {
    public init() {}
    public func now() -> Double { Date().timeIntervalSince1970 }
}

/// A clock that moves only when told, so expiry is tested without sleeping.
public final class ManualClock: ServiceClock {
    private let time: Locked<Double>
    public init(_ start: Double = 1_700_000_000) { time = Locked(start) }
    public func now() -> Double { time.withLock { $0 } }
    public func advance(_ seconds: Double) { time.withLock { $0 += seconds } }
}
