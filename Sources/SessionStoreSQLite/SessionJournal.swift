import Dispatch
import Foundation
import Locking
import SQLite
import SessionStore

/// The durable copy of the session store, with group commit. The shards keep the sessions in
/// memory and hand every change here in the order they made it; a writer takes whatever has
/// queued up since the last write, appends it all to the step log (`StepLog`) in one write,
/// and only then completes each change's ticket, so an answer that waits for its ticket
/// reports a stored step. A checkpoint thread moves the log into an SQLite database in WAL
/// mode (one transaction per log, each session's last change only) and starts a new log; at
/// start-up what the logs hold goes into the database before the sessions are read.
///
/// The writer is the committer thread or, for steps with `process` sync and no commit window
/// (`drive`), the step's own request thread: handing a step to another thread and resuming
/// its connection from there cost more CPU than the write itself.
///
/// A write that fails (a full disk, an I/O error) stores none of its changes. The sessions it
/// touched are then out of step with the store, so they are *poisoned*: later changes to them
/// fail too, until their shard has put back what the store holds (`restore`) and said so with
/// a `cleared` marker that queues behind those changes. A client therefore never gets an
/// acknowledgement for a state built on a step that was not stored.
final class SessionJournal: SessionLog, @unchecked Sendable {
    static let applicationID = 0x4C53_544D  // "LSTM"
    /// 2 added `fingerprint`; a version 1 store gains the column when opened.
    static let schemaVersion = 2
    static let defaultCheckpointBytes = 16 << 20

    typealias Sync = SessionSync

    let path: String
    let sync: Sync
    /// Microseconds the committer waits after the first change of a transaction arrives, so
    /// that more join it: fewer, larger transactions for a little latency.
    let window: Int
    /// A log this large is moved into the database and a new one begun.
    let checkpointBytes: Int
    /// Whether a step's own thread writes its change (`drive`).
    let drivenCommits: Bool
    var logPath: String { path + "-steps" }
    var oldLogPath: String { path + "-steps.old" }  // both named again in init

    /// Held by whoever writes to the log: `log`, `batch`, `poisoned` and `buffer` are touched
    /// only so.
    private let writing = Locked(())
    private var log: StepLog?
    /// Where the store's warnings go (the server's one logger).
    let logger: StoreLogger
    /// The changes a writer has taken from the queue, and the bytes it writes for them.
    private var batch: [(Change, Ticket?)] = []
    private var buffer: [UInt8] = []
    /// Ids whose last write failed, until their `cleared` marker.
    private var poisoned: Set<String> = []
    /// The database, touched only holding this lock (after `writing`, when both are held).
    let database: Locked<Database?>
    /// The changes waiting for a writer, and whether more are taken (not once closing).
    private let queue = Locked<(items: [(Change, Ticket?)], open: Bool)>(([], true))
    private let wake = DispatchSemaphore(value: 0)
    private let checkpointWake = DispatchSemaphore(value: 0)
    /// A checkpoint is wanted or under way (set by the writer that passes `checkpointBytes`).
    private let checkpointPending = Locked(false)
    /// Called on the writer's thread with the ids of a failed write and what the store holds
    /// for each (nil: no row): the store puts that back in memory.
    var restore: (@Sendable ([(String, Row?)]) -> Void)?
    /// Told of each write and each checkpoint that had a log to move (the server's metrics).
    var events: (any SessionEvents)?

    /// Opens (or makes) the store at `path`, taking it for this process alone, and moves
    /// what its step logs hold into it. Throws one clear error for a file that is not a
    /// session store, a damaged one or a damaged log, one another process holds, or one that
    /// cannot be written.
    init(path: String, sync: Sync, window: Int = 0, checkpointBytes: Int = defaultCheckpointBytes,
         logger: @escaping StoreLogger = { _, _ in }) throws(StoreError) {
        self.path = path
        self.logger = logger
        self.sync = sync
        self.window = window
        self.checkpointBytes = checkpointBytes
        drivenCommits = sync == .process && window == 0
        // the logs are read (and a damaged one refused) before the database is written
        var logs: [(String, StepLog.Mapped)] = []
        let opened = try Database(path: path, sync: sync) { () throws(StoreError) in
            for file in [path + "-steps.old", path + "-steps"] {
                guard let mapped = try StepLog.Mapped(file) else { continue }
                if mapped.dropped > 0 {
                    logger(.warning, "the session store's step log '\(file)' ends in a record cut short (\(mapped.dropped) bytes, never acknowledged); dropped")
                }
                logs.append((file, mapped))
            }
        }
        database = Locked(opened)
        for (file, log) in logs { try opened.apply(log, file: file) }
        log = try StepLog(creating: logPath, sync: sync == .full)
        try? FileManager.default.removeItem(atPath: oldLogPath)
    }

    /// Every stored session (before the committer starts).
    func loadAll() throws(StoreError) -> [Row] {
        try database.withLock { db throws(StoreError) in try db!.loadAll() }
    }

    /// Starts the committer and checkpoint threads.
    func start() {
        let committer = Thread { [self] in run() }
        committer.name = "session-journal"
        committer.start()
        let checkpointer = Thread { [self] in
            while true {
                checkpointWake.wait()
                guard database.withLock({ $0 != nil }) else { return }
                if !checkpoint() { sleep(1) }  // a full disk: try again, but not at every write
            }
        }
        checkpointer.name = "session-checkpoint"
        checkpointer.start()
    }

    // MARK: SessionLog

    func put(_ session: StoredSession) -> StoreTicket? { append(.put(session)) }

    /// The step's record is made here, straight from the state's bytes.
    func stepped(id: String, step: Int, lastUsed: Double, state: UnsafeRawBufferPointer) -> StoreTicket? {
        append(.step(id: id, record: StepLog.stepRecord(id: id, step: step, lastUsed: lastUsed, state: state)), driven: true)
    }

    func delete(_ id: String, wait: Bool) -> StoreTicket? { append(.delete(id), wait: wait) }

    func cleared(_ id: String) { append(.cleared(id), wait: false) }

    /// Queues a change; its ticket completes once it is stored (nil: nobody waits). `driven`:
    /// the caller calls `drive` next, so the committer thread is not woken for it.
    @discardableResult
    func append(_ change: Change, wait: Bool = true, driven: Bool = false) -> Ticket? {
        let ticket = wait ? Ticket() : nil
        let first = queue.withLock { q -> Bool? in
            guard q.open else { return nil }
            q.items.append((change, ticket))
            return q.items.count == 1
        }
        guard let first else {
            ticket?.complete(.failure(SessionError.unavailable("the session store is closed (the server is stopping)")))
            return ticket
        }
        if first, !(driven && drivenCommits) { wake.signal() }
        return ticket
    }

    /// Writes `ticket`'s change on this thread unless a writer has written it meanwhile:
    /// waiting for a writer that holds `writing`, then writing everything queued since (the
    /// group commit, as a follower in a leader's group).
    func drive(_ ticket: Ticket) {
        guard drivenCommits else { return }
        writing.withLock { _ in
            if !ticket.isDone { writeQueued() }
        }
    }

    /// Writes what is queued, moves the log and the WAL into the database file and closes
    /// it, releasing the file for another process; changes after this are refused with 503.
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

    /// Returns once everything queued so far is written (or failed), blocking the calling
    /// thread, with the log and the WAL moved into the database file.
    func flushBlocking() {
        guard let ticket = append(.checkpoint) else { return }
        while !ticket.isDone { usleep(1000) }
    }

    private func run() {
        while true {
            wake.wait()
            if window > 0 { usleep(UInt32(window)) }
            let open = writing.withLock { _ -> Bool in
                guard log != nil else { return false }
                writeQueued()
                return log != nil
            }
            guard open else { return }
        }
    }

    /// Takes the queue and writes it (holding `writing`). A close at its end closes the log
    /// and the database; the committer and checkpoint threads then see them gone and end.
    private func writeQueued() {
        queue.withLock { swap(&$0.items, &batch) }
        defer { batch.removeAll(keepingCapacity: true) }  // the queue's next buffer
        guard let last = batch.last else { return }
        if case let .close(done) = last.0 {
            batch.removeLast()
            write()
            checkpoint(final: true)
            log?.close()
            log = nil
            try? FileManager.default.removeItem(atPath: logPath)
            database.withLock { $0 = nil }
            wake.signal()
            checkpointWake.signal()
            done.signal()
            return
        }
        write()
    }

    /// Appends the batch's changes to the log in one write, then completes their tickets.
    private func write() {
        guard !batch.isEmpty, log != nil else { return }
        var refused: [Int] = []  // changes of poisoned sessions: not written
        var wantsCheckpoint = false
        buffer.removeAll(keepingCapacity: true)
        for (k, (change, _)) in batch.enumerated() {
            switch change {
            case let .cleared(id): poisoned.remove(id)
            case .checkpoint: wantsCheckpoint = true
            case .close: break
            case .put, .step, .delete:
                if poisoned.contains(change.id) { refused.append(k) } else { StepLog.encode(change, into: &buffer) }
            }
        }
        if buffer.isEmpty || log!.append(&buffer, sync: sync == .full) {
            let stale = SessionError.unavailable("the session store failed to write an earlier change of this session; it has been put back to its stored state, so retry")
            var r = 0
            for (k, (_, ticket)) in batch.enumerated() {
                if r < refused.count, refused[r] == k {
                    ticket?.complete(.failure(stale))
                    r += 1
                } else if case .checkpoint = batch[k].0 {
                    continue  // completed once the checkpoint is done
                } else {
                    ticket?.complete(.success(()))
                }
            }
            events?.storeCommitted(changes: batch.count, failed: false)
            if wantsCheckpoint {
                let ok = checkpoint(final: true)
                for case let (.checkpoint, ticket) in batch { ticket?.complete(ok ? .success(()) : .failure(.unavailable("the session store could not move its step log into the database"))) }
            } else if log!.size >= checkpointBytes, checkpointPending.withLock({ p in defer { p = true }; return !p }) {
                checkpointWake.signal()
            }
            return
        }
        let message = String(cString: strerror(errno))
        let why = SessionError.unavailable("the session store could not write this change (\(message)); the session is as it was before it")
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
        events?.storeCommitted(changes: batch.count, failed: true)
        // an id whose stored row cannot be read stays poisoned: refused, never restored wrongly
        restore?(stored(ids))
    }

    /// What the store holds for each id: its last changes in the logs over its row in the
    /// database (holding `writing`). Ids that cannot be read are left out.
    private func stored(_ ids: [String]) -> [(String, Row?)] {
        let wanted = Set(ids)
        var entries: [StepLog.Entry] = []
        for file in [oldLogPath, logPath] {
            do {
                entries += try StepLog.read(file)?.entries ?? []
            } catch {
                return []  // unreadable: every id stays poisoned
            }
        }
        let folded = StepLog.fold(entries, only: wanted)
        return database.withLock { db in
            ids.compactMap { id -> (String, Row?)? in
                switch folded[id] {
                case let .put(row)?: return (id, row)
                case .delete?: return (id, nil)
                case let .step(step, lastUsed, state)?:
                    guard let row = try? db?.stored(id) else { return nil }
                    return (id, row.stepped(step: step, lastUsed: lastUsed, state: state))
                case nil:
                    return (try? db?.stored(id)).map { (id, $0) }
                }
            }
        }
    }

    /// Moves the log into the database: the current log becomes the old one and a new log is
    /// begun (holding `writing`, briefly), then the old one is applied in one transaction and
    /// removed. An old log that cannot be applied (a full disk) stays and is tried again
    /// next time; until then the current log grows. `final`: the caller holds `writing`
    /// (a drain), and the WAL is moved into the database file too. True when it all worked.
    @discardableResult
    private func checkpoint(final: Bool = false) -> Bool {
        defer { checkpointPending.withLock { $0 = false } }
        let rotate = { [self] () -> Bool in
            guard log != nil else { return false }
            if FileManager.default.fileExists(atPath: oldLogPath) || log!.isEmpty { return true }
            guard rename(logPath, oldLogPath) == 0 else { return false }
            do {
                let next = try StepLog(creating: logPath, sync: sync == .full)
                log!.close()
                log = next
            } catch {
                _ = rename(oldLogPath, logPath)  // no new log: the open one keeps its name and goes on
                return false
            }
            return true
        }
        // a drain passes twice when a checkpoint under way had the old log: the second
        // takes what the current one holds
        for _ in 0..<(final ? 2 : 1) {
            guard final ? rotate() : writing.withLock({ _ in rotate() }) else { return false }
            guard apply() else { return false }
            if final, log?.isEmpty ?? true { break }
        }
        if final {
            do { try database.withLock { db throws(StoreError) in try db?.truncateWAL() } } catch {
                logger(.error, "\(error)")
                return false
            }
        }
        return true
    }

    /// Applies the old log to the database and removes it (holding the database's lock).
    private func apply() -> Bool {
        guard FileManager.default.fileExists(atPath: oldLogPath) else { return true }
        let ok = database.withLock { db -> Bool in
            guard let db else { return false }
            do {
                if let log = try StepLog.Mapped(oldLogPath) { try db.apply(log, file: oldLogPath) }
            } catch {
                logger(.error, "the session store's checkpoint failed (\(error)); the step log is kept and tried again")
                return false
            }
            try? FileManager.default.removeItem(atPath: oldLogPath)
            if sync == .full { StepLog.syncDirectory(of: oldLogPath) }
            return true
        }
        events?.storeCheckpointed(ok: ok)
        return ok
    }
}

/// A session store that cannot be opened or read: said once, at start-up.
public struct StoreError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
