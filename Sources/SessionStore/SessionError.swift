/// Why the session store refused a call. It knows no HTTP: each protocol front end renders it
/// in its own envelope, in one place.
public enum SessionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No such live session: never made, expired, evicted or deleted (the message says which).
    case notFound(String)
    /// A stored session that cannot run on the versions served now.
    case gone(String)
    /// The session is not where the call expected it (`expected_step`), or cannot move as asked.
    case conflict(String)
    /// The store holds its maximum; a place frees in `retryAfter` seconds at the soonest.
    case full(String, retryAfter: Int)
    /// The durable store could not write the change, or is closed; nothing was changed.
    case unavailable(String)
    /// The step cannot be taken as asked (its count, or an output that is not finite).
    case refused(String)

    public var description: String {
        switch self {
        case let .notFound(m), let .gone(m), let .conflict(m), let .full(m, _), let .unavailable(m), let .refused(m): return m
        }
    }
}

/// What the session store reports as it goes, for whoever counts it (the server's metrics):
/// the store knows the events, not how they are exposed.
public protocol SessionEvents: Sendable {
    func sessionCreated()
    func sessionsExpired(_ count: Int)
    func sessionEvicted()
    func sessionDeleted()
    /// A durable driver wrote `changes` changes in one write (or failed to).
    func storeCommitted(changes: Int, failed: Bool)
    /// A durable driver moved its log into its database (or failed to).
    func storeCheckpointed(ok: Bool)
}
