import Locking

/// A durable copy under the memory driver's shards (the SQLite driver's journal): the shards
/// keep every session in memory and hand each change here, in the order they make it; a
/// call's answer waits for the change's ticket.
public protocol SessionLog: AnyObject, Sendable {
    /// Stores a session whole (made, moved, or its state replaced).
    func put(_ session: StoredSession) -> StoreTicket?
    /// Stores a step, from the session's new state as bytes (read during the call only). The
    /// caller drives the ticket next (`drive`).
    func stepped(id: String, step: Int, lastUsed: Double, state: UnsafeRawBufferPointer) -> StoreTicket?
    /// Stores that a session ended; `wait: false` when nobody waits (an expiry).
    func delete(_ id: String, wait: Bool) -> StoreTicket?
    /// The shard has put `id` back to what the log holds, after a failed write: its changes
    /// count again.
    func cleared(_ id: String)
    /// Writes `ticket`'s change on this thread when the log lets callers write their own.
    func drive(_ ticket: StoreTicket)
}

/// Where a driver says what its callers cannot see (a damaged log dropped at start-up, a
/// checkpoint that failed): the server's one logger.
public typealias StoreLogger = @Sendable (StoreNotice, String) -> Void
public enum StoreNotice: Sendable { case warning, error }

/// A session as a durable driver stores it: everything needed to bring it back.
public struct StoredSession: Sendable {
    public let id: String
    public let model: String
    public let version: String
    /// `SessionModel.fingerprint` of the version it ran on ("" in a store from before versions).
    public let fingerprint: String
    public let step: Int
    public let created: Double
    public let lastUsed: Double
    /// `SessionModel.stateLayout` of the state the bytes are.
    public let layout: String
    public let state: [UInt8]

    public init(id: String, model: String, version: String, fingerprint: String, step: Int, created: Double, lastUsed: Double, layout: String, state: [UInt8]) {
        (self.id, self.model, self.version, self.fingerprint) = (id, model, version, fingerprint)
        (self.step, self.created, self.lastUsed, self.layout, self.state) = (step, created, lastUsed, layout, state)
    }

    public func stepped(step: Int, lastUsed: Double, state: [UInt8]) -> StoredSession {
        StoredSession(id: id, model: model, version: version, fingerprint: fingerprint, step: step, created: created, lastUsed: lastUsed, layout: layout, state: state)
    }
}

/// Completed when a change has been stored (or has failed to be).
public final class StoreTicket: Sendable {
    public typealias Outcome = Result<Void, SessionError>
    private let state = Locked<(result: Outcome?, then: (@Sendable (Outcome) -> Void)?)>((nil, nil))

    public init() {}

    public func complete(_ result: Outcome) {
        let then = state.withLock { s -> (@Sendable (Outcome) -> Void)? in
            s.result = result
            defer { s.then = nil }
            return s.then
        }
        then?(result)
    }

    /// The outcome, nil while the change waits to be written.
    public var outcome: Outcome? { state.withLock { $0.result } }
    public var isDone: Bool { outcome != nil }

    /// Calls `then` with the outcome: at once when it is known, else on the writer's thread
    /// as it completes (so `then` should be short). One `then` per ticket.
    public func onComplete(_ then: @escaping @Sendable (Outcome) -> Void) {
        let done = state.withLock { s -> Outcome? in
            if s.result == nil { s.then = then }
            return s.result
        }
        if let done { then(done) }
    }

    public func wait() async -> Outcome {
        await withCheckedContinuation { continuation in onComplete { continuation.resume(returning: $0) } }
    }
}
