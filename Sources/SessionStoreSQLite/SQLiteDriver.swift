import Locking
import SessionStore

/// `process`: a change is in the step log (in the OS's cache) before it is acknowledged, which
/// survives the process being killed; `full`: it is on the medium (an fsync per commit).
public enum SessionSync: String, Sendable { case process, full }

/// The SQLite driver: the memory driver's shards, with every change made durable first in a
/// step log (group commit) and moved from there into an SQLite database (`SessionJournal`).
/// Sessions survive a restart or a crash of the process; with `full` sync, of the machine.
public final class SQLiteDriver: SessionDriver {
    public static let defaultCheckpointBytes = SessionJournal.defaultCheckpointBytes

    let journal: SessionJournal
    let memory: MemoryDriver
    /// The stored sessions, read when the store opens, until `load` brings them back.
    private let rows: Locked<[StoredSession]?>
    public var path: String { journal.path }

    /// Opens (or makes) the store at `path`, taking it for this process alone. Throws one clear
    /// error for a file that is not a session store, a damaged one or a damaged log, one
    /// another process holds, or one that cannot be written.
    public init(path: String, sync: SessionSync, window: Int = 0, checkpointBytes: Int = defaultCheckpointBytes,
                shards: Int, clock: any ServiceClock, ttl: Double, maxSessions: Int, evictWhenFull: Bool,
                events: any SessionEvents, logger: @escaping StoreLogger = { _, _ in }) throws(StoreError) {
        journal = try SessionJournal(path: path, sync: sync, window: window, checkpointBytes: checkpointBytes, logger: logger)
        rows = Locked(try journal.loadAll())
        journal.events = events
        memory = MemoryDriver(shards: shards, clock: clock, ttl: ttl, maxSessions: maxSessions, evictWhenFull: evictWhenFull, events: events, log: journal)
    }

    public func storedVersions() -> [(model: String, version: Int)] {
        rows.withLock { $0 ?? [] }.compactMap { row in Int(row.version).map { (row.model, $0) } }
    }

    /// Brings the stored sessions back and starts the log's writers (the first call only).
    public func load(versions: @escaping Versions) -> LoadReport {
        guard let stored = rows.withLock({ rows in defer { rows = nil }; return rows }) else { return LoadReport() }
        var report = memory.loadNow(stored, versions: versions)
        report.source = journal.path
        let memory = self.memory
        journal.restore = { rows in Task { await memory.restore(rows, versions: versions) } }
        journal.start()
        return report
    }

    public func close() {
        memory.close()
        journal.close()
    }

    // MARK: The memory driver's calls

    public var activeCount: Int { memory.activeCount }
    public func create(on model: any SessionModel, state: [Float]) async throws(SessionError) -> SessionInfo {
        try await memory.create(on: model, state: state)
    }
    public func start(_ id: String, on model: any SessionModel, state: [Float]) async throws(SessionError) -> SessionInfo {
        try await memory.start(id, on: model, state: state)
    }
    public func info(_ id: String) async -> Result<SessionInfo, SessionError> { await memory.info(id) }
    public func infoNow(_ id: String) -> Result<SessionInfo, SessionError>? { memory.infoNow(id) }
    public func export(_ id: String) async -> Result<(SessionInfo, [Float]), SessionError> { await memory.export(id) }
    public func stepNow(_ request: StepRequest) -> StepResult? { memory.stepNow(request) }
    public func step(_ request: StepRequest) async -> StepResult { await memory.step(request) }
    public func migrate(_ id: String, to model: any SessionModel, expectedStep: Int?) async -> Result<SessionInfo, SessionError> {
        await memory.migrate(id, to: model, expectedStep: expectedStep)
    }
    public func replaceState(_ id: String, state: [Float], readFor: any SessionModel, step: Int?) async -> Result<SessionInfo, SessionError> {
        await memory.replaceState(id, state: state, readFor: readFor, step: step)
    }
    public func delete(_ id: String) async -> Result<Void, SessionError> { await memory.delete(id) }
    @discardableResult public func sweep() async -> Int { await memory.sweep() }
}
