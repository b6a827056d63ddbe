import Dispatch
import SessionStore

extension SessionJournal {
    typealias Row = StoredSession
    typealias Ticket = StoreTicket

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
}
