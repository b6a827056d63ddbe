/// A model version as the session store sees it: what a session is pinned to, the width and
/// layout of its state, and how to step it. The store holds states as rows of Floats and
/// never looks inside them; the runtime implements this for its model versions.
public protocol SessionModel: AnyObject, Sendable {
    var name: String { get }
    var version: Int { get }
    /// The version's files (weights and config): a stored session comes back only onto the
    /// very files it ran on.
    var fingerprint: String { get }
    /// The state's shape in words: sessions move between versions only when theirs are equal.
    var stateLayout: String { get }
    /// Floats in one session's state.
    var stateWidth: Int { get }
    /// Whether rows (or a state) read for `other` mean the same to this version, so that a
    /// step decoded for `other` may run here.
    func readsInput(like other: any SessionModel) -> Bool
    /// Scratch for stepping this version's sessions, one per shard (the store keeps it).
    func makeStepper() -> any SessionStepper
    /// Sessions pinned to this version changed by `delta` (the store counts them in and out).
    func sessionsChanged(by delta: Int)
}

/// Steps one session at a time through one model version, with scratch kept from step to step.
/// Used by one shard at a time.
public protocol SessionStepper: AnyObject {
    /// Steps `state` (the session's row: `stateWidth` Floats) through `rows` (raw inputs, one
    /// array per timestep) and returns each step's output. Nil when an output or the new state
    /// is not finite; then `state` must hold what it held before.
    func step(_ rows: [[Float]], state: UnsafeMutablePointer<Float>) -> [[Float]]?
}
