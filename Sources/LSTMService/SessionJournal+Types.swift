import Dispatch
import Locking

extension SessionJournal {
    /// A session as stored: everything needed to bring it back after a restart.
    struct Row: Sendable {
        let id: String
        let model: String
        let version: String
        /// `Model.fingerprint` of the version it ran on ("" in a store from before versions).
        let fingerprint: String
        let step: Int
        let created: Double
        let lastUsed: Double
        /// `RecurrentState.layout` of the state the bytes are.
        let layout: String
        let state: [UInt8]

        func stepped(step: Int, lastUsed: Double, state: [UInt8]) -> Row {
            Row(id: id, model: model, version: version, fingerprint: fingerprint, step: step, created: created, lastUsed: lastUsed, layout: layout, state: state)
        }
    }

    enum Change: Sendable {
        case put(Row)
        /// A step of a session put before, as its log record (`StepLog.stepRecord`), made by
        /// the shard straight from the state's bytes.
        case step(id: String, record: [UInt8])
        case delete(String)
        /// The shard has restored this id from the database: its changes count again.
        case cleared(String)
        /// Moves the log and the WAL into the database file (a drain's last change), so that
        /// the file alone holds every session.
        case checkpoint
        /// The journal's last change: the committer closes the database and ends.
        case close(DispatchSemaphore)

        var id: String {
            switch self {
            case let .put(row): return row.id
            case let .step(id, _), let .delete(id), let .cleared(id): return id
            case .checkpoint, .close: return ""
            }
        }
    }

    /// `process`: a commit is in the WAL (in the OS's cache) before it is acknowledged, which
    /// survives the process being killed; `full`: it is on the medium (an fsync per commit).
    enum Sync: String, Sendable { case process, full }

    /// Completed when the change's transaction has been written (or has failed).
    final class Ticket: Sendable {
        typealias Outcome = Result<Void, SessionError>
        private let state = Locked<(result: Outcome?, then: (@Sendable (Outcome) -> Void)?)>((nil, nil))

        func complete(_ result: Outcome) {
            let then = state.withLock { s -> (@Sendable (Outcome) -> Void)? in
                s.result = result
                defer { s.then = nil }
                return s.then
            }
            then?(result)
        }

        /// The outcome, nil while the change waits to be written.
        var outcome: Outcome? { state.withLock { $0.result } }
        var isDone: Bool { outcome != nil }

        /// Calls `then` with the outcome: at once when it is known, else on the committer's
        /// thread as it completes (so `then` should be short). One `then` per ticket.
        func onComplete(_ then: @escaping @Sendable (Outcome) -> Void) {
            let done = state.withLock { s -> Outcome? in
                if s.result == nil { s.then = then }
                return s.result
            }
            if let done { then(done) }
        }

        func wait() async -> Outcome {
            await withCheckedContinuation { continuation in onComplete { continuation.resume(returning: $0) } }
        }
    }
}
