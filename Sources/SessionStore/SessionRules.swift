/// The rules every driver applies to a session's calls, and the words it refuses with, in one
/// place: whichever driver holds the session, a client reads the same answer.
public enum SessionRules {
    /// Why a session that was there is not.
    public enum Gone: String, Sendable { case expired, evicted, deleted }

    public static let closed = SessionError.unavailable("the session store is closed (the server is stopping)")

    public static func notFound(_ id: String, _ why: Gone?, ttl: Double) -> SessionError {
        switch why {
        case .expired?: return .notFound("session '\(id)' expired after \(Int(ttl)) s idle")
        case .evicted?: return .notFound("session '\(id)' was evicted (least recently used) to make room")
        case .deleted?: return .notFound("session '\(id)' was deleted")
        case nil: return .notFound("no session '\(id)'")
        }
    }

    public static func full(_ maxSessions: Int, retryAfter: Int) -> SessionError {
        .full("the server holds its maximum of \(maxSessions) sessions; delete one or retry in \(retryAfter) s", retryAfter: retryAfter)
    }

    /// Why a step of `count` rows may not run on a session at step `current` (nil: it may).
    public static func stepRefusal(_ id: String, at current: Int, count: Int, expected: Int?) -> SessionError? {
        if let expected, expected != current { return conflict(id, at: current, expected: expected) }
        guard current <= maxSessionStep - count else {
            return .refused("session '\(id)' is at step \(current): \(count) more would pass the most a session counts (\(maxSessionStep)); nothing was changed")
        }
        return nil
    }

    public static func conflict(_ id: String, at current: Int, expected: Int) -> SessionError {
        .conflict("session '\(id)' is at step \(current) but the request expected step \(expected); nothing was changed")
    }

    public static func notFinite(at current: Int) -> SessionError {
        .refused("the model's output is not a finite number for this input; the session was not changed (still at step \(current))")
    }

    /// Why a session on `from` at `step` may not move to `to` (nil: it may).
    public static func migration(_ id: String, from: any SessionModel, to: any SessionModel, at step: Int, expected: Int?) -> SessionError? {
        guard from.name == to.name else {
            return .conflict("session '\(id)' runs model '\(from.name)'; it cannot move to model '\(to.name)'")
        }
        if let expected, expected != step { return conflict(id, at: step, expected: expected) }
        guard from.stateLayout == to.stateLayout else {
            return .conflict("session '\(id)' cannot move from version \(from.version) to \(to.version) of '\(from.name)': their states differ (version \(from.version): \(from.stateLayout); version \(to.version): \(to.stateLayout)); it stays on version \(from.version)")
        }
        return nil
    }

    /// Why `state` (read for `readFor`) may not replace the state of a session on `current`
    /// that is to run on `target` (nil: it may).
    public static func replacement(_ id: String, current: any SessionModel, target: any SessionModel, readFor: any SessionModel, count: Int) -> SessionError? {
        guard readFor.stateLayout == target.stateLayout, count == target.stateWidth else {
            return .conflict("session '\(id)' runs on version \(current.version) of '\(current.name)', whose state is (\(target.stateLayout)), not (\(readFor.stateLayout)); nothing was changed")
        }
        return nil
    }

    /// The loaded version a stored session runs on, or why it cannot run now: its version
    /// must be served with the very weights and config it ran on, and its state must be of
    /// that version's layout (`stateBytes` long).
    public static func version(of row: StoredSession, _ versions: Versions) -> Result<any SessionModel, SessionError> {
        guard let version = Int(row.version), let model = versions(row.model, version, row.fingerprint) else {
            return .failure(.gone("session '\(row.id)' runs model '\(row.model)' version \(row.version), which is no longer served"))
        }
        guard row.fingerprint.isEmpty || row.fingerprint == model.fingerprint else {
            return .failure(.gone("session '\(row.id)' ran on other files of model '\(row.model)' version \(row.version) than are served now (the weights or config changed); publish changed models as a new version to keep sessions"))
        }
        guard model.stateLayout == row.layout, row.state.count == model.stateWidth * MemoryLayout<Float>.stride else {
            return .failure(.gone("session '\(row.id)' holds a state of layout (\(row.layout)); model '\(row.model)' version \(row.version) as served now has (\(model.stateLayout))"))
        }
        return .success(model)
    }
}
