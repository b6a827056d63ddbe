import Locking
import ModelRuntime

/// What a front end makes once per served model version (its answer writers), made for each
/// snapshot as it is installed. The last snapshot's are let go then, so that retired versions
/// can leave memory; a retired version still answering a session gets one made on the spot.
public final class PerVersion<Value: Sendable>: Sendable {
    /// A version's value, with the version (an id alone could be a freed entry's, reused).
    @usableFromInline
    final class Made: Sendable {
        @usableFromInline let entry: ModelRegistry.Entry
        @usableFromInline let value: Value
        init(_ entry: ModelRegistry.Entry, _ value: Value) { (self.entry, self.value) = (entry, value) }
    }

    @usableFromInline let make: @Sendable (ModelRegistry.Entry) -> Value
    @usableFromInline let made = Locked<[ObjectIdentifier: Made]>([:])

    public init(_ make: @escaping @Sendable (ModelRegistry.Entry) -> Value) { self.make = make }

    public func install(_ registry: ModelRegistry) {
        var next: [ObjectIdentifier: Made] = [:]
        for e in registry.allEntries { next[ObjectIdentifier(e)] = Made(e, make(e)) }
        made.withLock { $0 = next }
    }

    // Inlinable so that it is specialized where it is used: once per request.
    @inlinable
    public func callAsFunction(_ entry: ModelRegistry.Entry) -> Value {
        if let found = made.withLock({ $0[ObjectIdentifier(entry)] }), found.entry === entry { return found.value }
        return make(entry)
    }
}
