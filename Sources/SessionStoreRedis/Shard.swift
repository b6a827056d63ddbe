import Locking
import SessionStore

/// One lock's worth of sessions in this process: calls on a session hold its shard's lock
/// across their round trip to Redis, so that this process sends one change of a session at a
/// time. Under the lock: the copies of the sessions served here, and a stepper per version.
final class Shard: Sendable {
    let held = Locked(Held())

    /// A session as last read or written here, on its resolved version.
    struct Cached {
        var record: SessionRecord
        let model: any SessionModel
    }

    struct Held {
        private(set) var cache: [String: Cached] = [:]
        private var steppers: [ObjectIdentifier: Stepper] = [:]
        /// Copies kept per shard; past it, an arbitrary one is let go (it is read again on use).
        let limit = 4096

        private final class Stepper {
            weak var model: (any SessionModel)?
            let stepper: any SessionStepper
            init(_ model: any SessionModel) { (self.model, stepper) = (model, model.makeStepper()) }
        }

        subscript(id: String) -> Cached? { cache[id] }

        /// Keeps `c` as the session's copy; each version counts the copies that hold it.
        mutating func keep(_ id: String, _ c: Cached) {
            if cache.count >= limit, cache[id] == nil { drop(cache.keys[cache.startIndex]) }
            c.model.sessionsChanged(by: 1)
            if let old = cache.updateValue(c, forKey: id) { old.model.sessionsChanged(by: -1) }
        }

        mutating func drop(_ id: String) {
            if let old = cache.removeValue(forKey: id) { old.model.sessionsChanged(by: -1) }
        }

        /// The stepper (scratch) for `model`, made on first use.
        mutating func stepper(_ model: any SessionModel) -> any SessionStepper {
            let key = ObjectIdentifier(model)
            if let s = steppers[key], s.model === model { return s.stepper }
            steppers = steppers.filter { $0.value.model != nil && $0.key != key }
            let s = Stepper(model)
            steppers[key] = s
            return s.stepper
        }
    }
}
