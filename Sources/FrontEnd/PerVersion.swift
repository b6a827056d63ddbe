import Locking
import ModelRuntime

/// What a front end makes once per served model version (its answer writers), made for each
/// snapshot as it is installed. The last snapshot's are let go then, so that retired versions
/// can leave memory; a retired version still answering a session gets one made on the spot.
public final class PerVersion<Value: Sendable>: Sendable {
    private let make: @Sendable (ModelRegistry.Entry) -> Value
    private let made = Locked<[ObjectIdentifier: (entry: ModelRegistry.Entry, value: Value)]>([:])

    public init(_ make: @escaping @Sendable (ModelRegistry.Entry) -> Value) { self.make = make }

    public func install(_ registry: ModelRegistry) {
        var next: [ObjectIdentifier: (entry: ModelRegistry.Entry, value: Value)] = [:]
        for e in registry.allEntries { next[ObjectIdentifier(e)] = (e, make(e)) }
        made.withLock { $0 = next }
    }

    public func callAsFunction(_ entry: ModelRegistry.Entry) -> Value {
        if let found = made.withLock({ $0[ObjectIdentifier(entry)] }), found.entry === entry { return found.value }
        return make(entry)
    }
}
