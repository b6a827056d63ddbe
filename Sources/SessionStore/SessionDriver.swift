/// What every session store promises, whatever keeps the sessions (memory, SQLite, ...). The
/// conformance suite (`Tests/SessionStoreTests`) checks each promise against every driver.
///
/// - An acknowledged change is stored: once a call returns success (a step: once its
///   `ticket` completes with success), a restart of a durable driver brings it back.
/// - Steps on one session are strictly ordered: none is lost or applied twice, and each sees
///   the state the one before it left.
/// - `expectedStep` means the same everywhere: a step or migration that names it runs only
///   when the session is at that step, else it is refused with `.conflict` and changes nothing.
/// - A refused call changes nothing.
/// - A session idle for longer than the TTL is gone (`.notFound` saying it expired); the store
///   holds at most `maxSessions`, then evicts the least recently used or refuses with `.full`.
/// - A session stays on the model version it started on until it migrates; a stored session
///   comes back only onto that version's very files, else it answers `.gone`.
public protocol SessionDriver: Sendable {
    /// Sessions held now.
    var activeCount: Int { get }

    /// A new session on `model`, holding `state` (`model.stateWidth` Floats), at step 0.
    func create(on model: any SessionModel, state: [Float]) async throws(SessionError) -> SessionInfo
    /// A session under an id the client chose: started afresh from `state`, or reset to it at
    /// step 0 (and moved to `model`) when it is live.
    func start(_ id: String, on model: any SessionModel, state: [Float]) async throws(SessionError) -> SessionInfo
    func info(_ id: String) async -> Result<SessionInfo, SessionError>
    /// `info` on this thread when the session's shard is idle; nil when it is busy.
    func infoNow(_ id: String) -> Result<SessionInfo, SessionError>?
    /// A session with a copy of its state.
    func export(_ id: String) async -> Result<(SessionInfo, [Float]), SessionError>
    /// Runs `request` on this thread when the session's shard is idle; nil when it is busy
    /// (then call `step`).
    func stepNow(_ request: StepRequest) -> StepResult?
    func step(_ request: StepRequest) async -> StepResult
    /// Moves a session to another version of its model when their states have one layout.
    func migrate(_ id: String, to model: any SessionModel, expectedStep: Int?) async -> Result<SessionInfo, SessionError>
    /// Sets a session's state (read for `readFor`, which must read input as its version
    /// does) and, when given, its step count.
    func replaceState(_ id: String, state: [Float], readFor: any SessionModel, step: Int?) async -> Result<SessionInfo, SessionError>
    func delete(_ id: String) async -> Result<Void, SessionError>
    /// Drops the expired sessions; how many.
    @discardableResult func sweep() async -> Int

    /// The (model, version) of every stored session, before `load`: the server loads versions
    /// its policy does not serve for them.
    func storedVersions() -> [(model: String, version: Int)]
    /// Brings back the stored sessions onto the versions `versions` finds (once, at start-up).
    func load(versions: @escaping Versions) -> LoadReport
    /// Stores every change made so far and releases the store (a drain's end); later
    /// changes are refused with `.unavailable`.
    func close()
}

/// Finds the loaded version a stored session ran on: (model, version, fingerprint) → the
/// version, preferring one with that fingerprint.
public typealias Versions = @Sendable (String, Int, String) -> (any SessionModel)?

/// What `load` brought back: live sessions, expired ones (deleted), and ones whose version is
/// not served (kept, answering `.gone`).
public struct LoadReport: Sendable {
    public var live = 0, expired = 0, orphaned = 0
    /// Where the sessions came from, for the log ("memory", or the store's path).
    public var source = "memory"
    public init() {}
}

/// A session as callers see it (its state stays in the store).
public struct SessionInfo: Sendable {
    public let id: String
    public let model: any SessionModel
    public let step: Int
    public let created: Double
    public let lastUsed: Double

    public init(id: String, model: any SessionModel, step: Int, created: Double, lastUsed: Double) {
        (self.id, self.model, self.step, self.created, self.lastUsed) = (id, model, step, created, lastUsed)
    }
}

/// A step, decoded before it reaches the store: the session, its raw input rows (one array
/// per timestep) as read for `readFor`, and the step the client expects it at.
public struct StepRequest: Sendable {
    public let id: String
    public let rows: [[Float]]
    public let expectedStep: Int?
    public let readFor: any SessionModel

    public init(id: String, rows: [[Float]], expectedStep: Int?, readFor: any SessionModel) {
        (self.id, self.rows, self.expectedStep, self.readFor) = (id, rows, expectedStep, readFor)
    }
}

public enum StepResult: Sendable {
    case stepped(Stepped)
    case refused(SessionError)
    /// The session runs a version that reads input unlike `readFor`: read the rows for this
    /// one and step again. Nothing was changed.
    case readFor(any SessionModel)
}

/// A step taken: the version it ran on, the step count after it, each timestep's output
/// (raw, as the model's stepper gave it), and the durable driver's ticket, which the answer
/// waits for (nil: nothing to wait for).
public struct Stepped: Sendable {
    public let model: any SessionModel
    public let step: Int
    public let outputs: [[Float]]
    public var ticket: StoreTicket?

    public init(model: any SessionModel, step: Int, outputs: [[Float]], ticket: StoreTicket?) {
        (self.model, self.step, self.outputs, self.ticket) = (model, step, outputs, ticket)
    }
}

/// The most steps a session counts: a state import may not set more, and a step that would
/// pass it is refused (2^53 − 1, the largest integer every JSON client reads exactly).
public let maxSessionStep = (1 << 53) - 1
