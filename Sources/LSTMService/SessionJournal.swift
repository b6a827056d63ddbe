import Dispatch
import Foundation
import Locking
import SQLite

/// The durable copy of the session store: one SQLite database in WAL mode, written by one
/// thread with group commit. The shards keep the sessions in memory and hand every change
/// here in the order they made it; the committer takes whatever has queued up since its last
/// transaction, writes it all in one transaction, and only then completes each change's
/// ticket, so an answer that waits for its ticket reports a stored step.
///
/// A transaction that fails (a full disk, an I/O error) stores none of its changes. The
/// sessions it touched are then out of step with the database, so they are *poisoned*: later
/// changes to them fail too, until their shard has put back what the database holds
/// (`restore`) and said so with a `cleared` marker that queues behind those changes. A client
/// therefore never gets an acknowledgement for a state built on a step that was not stored.
final class SessionJournal: @unchecked Sendable {
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
    }

    enum Change: Sendable {
        case put(Row)
        case delete(String)
        /// The shard has restored this id from the database: its changes count again.
        case cleared(String)
        /// Moves the WAL into the database file (a drain's last change), so that the file
        /// alone holds every session.
        case checkpoint
        /// The journal's last change: the committer closes the database and ends.
        case close(DispatchSemaphore)

        var id: String {
            switch self {
            case let .put(row): return row.id
            case let .delete(id), let .cleared(id): return id
            case .checkpoint, .close: return ""
            }
        }
    }

    /// `process`: a commit is in the WAL (in the OS's cache) before it is acknowledged, which
    /// survives the process being killed; `full`: it is on the medium (an fsync per commit).
    enum Sync: String, Sendable { case process, full }

    /// Completed when the change's transaction has been written (or has failed).
    final class Ticket: Sendable {
        typealias Outcome = Result<Void, APIError>
        private let state = Locked<(result: Outcome?, then: (@Sendable (Outcome) -> Void)?)>((nil, nil))

        func complete(_ result: Outcome) {
            let then = state.withLock { s -> (@Sendable (Outcome) -> Void)? in
                s.result = result
                defer { s.then = nil }
                return s.then
            }
            then?(result)
        }

        var isDone: Bool { state.withLock { $0.result != nil } }

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

    static let applicationID = 0x4C53_544D  // "LSTM"
    /// 2 added `fingerprint`; a version 1 store gains the column when opened.
    static let schemaVersion = 2

    let path: String
    let sync: Sync
    /// Microseconds the committer waits after the first change of a transaction arrives, so
    /// that more join it: fewer, larger transactions for a little latency.
    let window: Int
    /// The database and its statements, dropped together by `close` (the statements hold
    /// the database, so it closes after them, and its lock on the file goes with it).
    private final class Connection {
        let database: SQLiteDatabase
        let upsert: SQLiteStatement, remove: SQLiteStatement, select: SQLiteStatement
        init(_ database: SQLiteDatabase, upsert: SQLiteStatement, remove: SQLiteStatement, select: SQLiteStatement) {
            (self.database, self.upsert, self.remove, self.select) = (database, upsert, remove, select)
        }
    }
    private var connection: Connection?
    private var database: SQLiteDatabase { connection!.database }
    private var upsert: SQLiteStatement { connection!.upsert }
    private var remove: SQLiteStatement { connection!.remove }
    private var select: SQLiteStatement { connection!.select }
    /// The changes waiting for the committer, and whether more are taken (not once closing).
    private let queue = Locked<(items: [(Change, Ticket?)], open: Bool)>(([], true))
    private let wake = DispatchSemaphore(value: 0)
    /// Ids whose last transaction failed, until their `cleared` marker (committer thread only).
    private var poisoned: Set<String> = []
    /// Called on the committer thread with the ids of a failed transaction and what the
    /// database holds for each (nil: no row): the store puts that back in memory.
    var restore: (@Sendable ([(String, Row?)]) -> Void)?
    /// Called after each transaction: changes, then whether it failed.
    var committed: (@Sendable (Int, Bool) -> Void)?
    private(set) var lastError: String?

    /// Opens (or makes) the store at `path`, taking it for this process alone. Throws one
    /// clear error for a file that is not a session store, a damaged one, one another process
    /// holds, or one that cannot be written.
    init(path: String, sync: Sync, window: Int = 0) throws(StoreError) {
        self.path = path
        self.sync = sync
        self.window = window
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw StoreError("cannot make the session store's directory '\(directory)': \(error.localizedDescription)")
            }
        }
        func fail(_ e: SQLiteError) -> StoreError {
            if e.isCorrupt { return StoreError("'\(path)' is damaged or is not an lstm-serve session store (\(e.message)); move it aside to start with no sessions") }
            if e.isBusy { return StoreError("'\(path)' is held by another process (another lstm-serve?); each server needs a session store of its own") }
            return StoreError("cannot open the session store '\(path)': \(e.message)")
        }
        do {
            let db = try SQLiteDatabase(path: path)
            try db.execute("PRAGMA locking_mode = EXCLUSIVE")
            let app = Int(try db.scalar("PRAGMA application_id") ?? "0") ?? 0
            let tables = Int(try db.scalar("SELECT count(*) FROM sqlite_master") ?? "0") ?? 0
            if app != Self.applicationID, tables > 0 || app != 0 {
                throw StoreError("'\(path)' is an SQLite database of something else (application_id \(app), \(tables) schema objects), not an lstm-serve session store; give session_store another path")
            }
            let check = try db.scalar("PRAGMA quick_check") ?? ""
            guard check == "ok" else { throw StoreError("the session store '\(path)' is damaged (\(check.prefix(200))); move it aside to start with no sessions") }
            if app == Self.applicationID {
                // ours, but its table is gone: a file cut short (never made anew over it)
                guard try db.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'sessions'") == "1" else {
                    throw StoreError("the session store '\(path)' is damaged (its sessions table is missing; the file may be cut short); move it aside to start with no sessions")
                }
                let version = Int(try db.scalar("PRAGMA user_version") ?? "0") ?? 0
                if version == 1 {
                    try db.execute("BEGIN EXCLUSIVE; ALTER TABLE sessions ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''; PRAGMA user_version = 2; COMMIT;")
                } else if version != Self.schemaVersion {
                    throw StoreError("the session store '\(path)' has schema version \(version); this lstm-serve reads version \(Self.schemaVersion)")
                }
            }
            try db.execute("PRAGMA journal_mode = WAL")
            try db.execute("PRAGMA synchronous = \(sync == .full ? "FULL" : "NORMAL")")
            try db.execute("""
                BEGIN EXCLUSIVE;
                CREATE TABLE IF NOT EXISTS sessions (
                    id TEXT PRIMARY KEY, model TEXT NOT NULL, version TEXT NOT NULL, step INTEGER NOT NULL,
                    created REAL NOT NULL, last_used REAL NOT NULL, layout TEXT NOT NULL, state BLOB NOT NULL,
                    fingerprint TEXT NOT NULL DEFAULT ''
                ) WITHOUT ROWID;
                PRAGMA application_id = \(Self.applicationID);
                PRAGMA user_version = \(Self.schemaVersion);
                COMMIT;
                """)
            // an update in place when the row is there (REPLACE would delete and insert it)
            let upsert = try db.prepare("""
                INSERT INTO sessions VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (id) DO UPDATE SET
                model = excluded.model, version = excluded.version, step = excluded.step, created = excluded.created,
                last_used = excluded.last_used, layout = excluded.layout, state = excluded.state, fingerprint = excluded.fingerprint
                """)
            connection = Connection(db, upsert: upsert, remove: try db.prepare("DELETE FROM sessions WHERE id = ?1"),
                                    select: try db.prepare("SELECT id, model, version, step, created, last_used, layout, state, fingerprint FROM sessions WHERE id = ?1"))
        } catch let e as StoreError {
            throw e
        } catch let e as SQLiteError {
            throw fail(e)
        } catch {
            throw StoreError("cannot open the session store '\(path)': \(error)")
        }
    }

    /// Every stored session (before the committer starts).
    func loadAll() throws(StoreError) -> [Row] {
        do {
            let all = try database.prepare("SELECT id, model, version, step, created, last_used, layout, state, fingerprint FROM sessions")
            var rows: [Row] = []
            while try all.step() { rows.append(Self.row(all)) }
            return rows
        } catch {
            throw StoreError("cannot read the session store '\(path)': \(error.message)")
        }
    }

    private static func row(_ s: SQLiteStatement) -> Row {
        Row(id: s.text(0), model: s.text(1), version: s.text(2), fingerprint: s.text(8), step: s.int(3), created: s.double(4), lastUsed: s.double(5),
            layout: s.text(6), state: s.withBytes(7) { Array($0) })
    }

    /// Starts the committer thread.
    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "session-journal"
        thread.start()
    }

    /// Queues a change; its ticket completes once it is stored (nil: nobody waits).
    @discardableResult
    func append(_ change: Change, wait: Bool = true) -> Ticket? {
        let ticket = wait ? Ticket() : nil
        let first = queue.withLock { q -> Bool? in
            guard q.open else { return nil }
            q.items.append((change, ticket))
            return q.items.count == 1
        }
        guard let first else {
            ticket?.complete(.failure(APIError(.unavailable, "the session store is closed (the server is stopping)")))
            return ticket
        }
        if first { wake.signal() }
        return ticket
    }

    /// Writes what is queued, moves the WAL into the file and closes the database, releasing
    /// the file for another process; changes after this are refused with 503.
    func close() {
        flushBlocking()
        let done = DispatchSemaphore(value: 0)
        let first = queue.withLock { q -> Bool? in
            guard q.open else { return nil }
            q.open = false
            q.items.append((.close(done), nil))
            return q.items.count == 1
        }
        guard let first else { return }
        if first { wake.signal() }
        done.wait()
    }

    /// Returns once everything queued so far is written (or failed).
    func flush() async {
        if let ticket = append(.cleared("")) { _ = await ticket.wait() }
    }

    /// The same, blocking the calling thread, and the WAL moved into the database file (a
    /// drain, after the listener has stopped).
    func flushBlocking() {
        guard let ticket = append(.checkpoint) else { return }
        while !ticket.isDone { usleep(1000) }
    }

    private func run() {
        var batch: [(Change, Ticket?)] = []
        while true {
            wake.wait()
            if window > 0 { usleep(UInt32(window)) }
            batch.removeAll(keepingCapacity: true)
            queue.withLock { swap(&$0.items, &batch) }
            if batch.isEmpty { continue }
            if case let .close(done) = batch.last!.0 {
                commit(Array(batch.dropLast()))
                connection = nil
                done.signal()
                return
            }
            commit(batch)
        }
    }

    private func commit(_ batch: [(Change, Ticket?)]) {
        var refused: [Int] = []  // changes of poisoned sessions: not written
        var failure: SQLiteError?
        do {
            try database.execute("BEGIN")
            for (k, (change, _)) in batch.enumerated() {
                switch change {
                case let .cleared(id):
                    poisoned.remove(id)
                case .checkpoint, .close:
                    break
                case let .put(row):
                    if poisoned.contains(row.id) { refused.append(k); continue }
                    upsert.reset()
                    try upsert.bind(1, row.id)
                    try upsert.bind(2, row.model)
                    try upsert.bind(3, row.version)
                    try upsert.bind(4, row.step)
                    try upsert.bind(5, row.created)
                    try upsert.bind(6, row.lastUsed)
                    try upsert.bind(7, row.layout)
                    try row.state.withUnsafeBytes { try upsert.bind(8, bytes: $0) }
                    try upsert.bind(9, row.fingerprint)
                    try upsert.step()
                case let .delete(id):
                    if poisoned.contains(id) { refused.append(k); continue }
                    remove.reset()
                    try remove.bind(1, id)
                    try remove.step()
                }
            }
            try database.execute("COMMIT")
            if batch.contains(where: { if case .checkpoint = $0.0 { return true } else { return false } }) {
                try database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            }
        } catch let e as SQLiteError {
            failure = e
            try? database.execute("ROLLBACK")
        } catch {
            failure = SQLiteError(code: 1, message: "\(error)")
        }
        if let failure {
            lastError = failure.message
            let why = APIError(.unavailable, "the session store could not write this change (\(failure.message)); the session is as it was before it")
            var ids: [String] = []
            for (change, ticket) in batch {
                ticket?.complete(.failure(why))
                switch change {
                case .cleared, .checkpoint, .close: continue
                default: break
                }
                if !poisoned.contains(change.id) { ids.append(change.id) }
                poisoned.insert(change.id)
            }
            // an id whose row cannot be read stays poisoned: refused, never restored wrongly
            restore?(ids.compactMap { id in (try? stored(id)).map { (id, $0) } })
        } else {
            lastError = nil
            let stale = APIError(.unavailable, "the session store failed to write an earlier change of this session; it has been put back to its stored state, so retry")
            var r = 0
            for (k, (_, ticket)) in batch.enumerated() {
                if r < refused.count, refused[r] == k {
                    ticket?.complete(.failure(stale))
                    r += 1
                } else {
                    ticket?.complete(.success(()))
                }
            }
        }
        committed?(batch.count, failure != nil)
    }

    /// The stored row of `id`, nil when there is none.
    private func stored(_ id: String) throws(SQLiteError) -> Row? {
        select.reset()
        try select.bind(1, id)
        return try select.step() ? Self.row(select) : nil
    }
}

/// A session store that cannot be opened or read: said once, at start-up.
struct StoreError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
