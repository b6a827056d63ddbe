import RecurrentCore
import SessionStore

/// Steps sessions of one model version, one at a time, with scratch kept from step to step:
/// the session store's row is copied into a state, stepped (`Predictor.step`: normalize, the
/// network's step, real units), and copied back only when every output and the state are
/// finite, so a refused step leaves the row as it was. Every protocol's session step runs
/// through it, so stepping means one thing everywhere.
public final class StepRunner: SessionStepper {
    let predictor: Predictor
    let workspace: Workspace
    var state: RecurrentState
    /// The normalized row being stepped (its buffer kept from step to step).
    var normalized: [Float] = []

    public init(predictor: Predictor) {
        self.predictor = predictor
        workspace = Workspace(pipeline: predictor.model.pipeline, batchSize: 1)
        state = predictor.model.pipeline.makeState(batchSize: 1)
    }

    public func step(_ rows: [[Float]], state row: UnsafeMutablePointer<Float>) -> [[Float]]? {
        state.take(from: row)
        guard let outputs = predictor.step(rows, state: &state, workspace: workspace, scratch: &normalized) else { return nil }
        state.store(into: row)
        return outputs
    }
}

/// A model version is what a session is pinned to.
extension ModelRegistry.Entry: SessionModel {
    public var name: String { model.name }
    public var fingerprint: String { model.fingerprint }

    /// Rows read for another version mean the same here when both read the same fields into
    /// the same shape: features (and which are derived), the row's shape, token ids.
    public func readsInput(like other: any SessionModel) -> Bool {
        guard let other = other as? ModelRegistry.Entry else { return false }
        return other === self || other.inputSignature == inputSignature
    }

    public func makeStepper() -> any SessionStepper { StepRunner(predictor: predictor) }

    public func sessionsChanged(by delta: Int) { sessionCount.add(delta, ordering: .relaxed) }

    /// A state for this version from the store's values.
    public func state(_ values: [Float]) -> RecurrentState {
        var state = model.pipeline.makeState(batchSize: 1)
        values.withUnsafeBufferPointer { if let base = $0.baseAddress { state.take(from: base) } }
        return state
    }
}

extension RecurrentState {
    /// The values as the session store keeps them (h, then c, then history).
    public var values: [Float] {
        [Float](unsafeUninitializedCapacity: valueCount) { buffer, n in
            if let base = buffer.baseAddress { store(into: base) }
            n = valueCount
        }
    }
}

extension SessionInfo {
    /// The version the session runs on (the store holds this runtime's versions only).
    public var entry: ModelRegistry.Entry { model as! ModelRegistry.Entry }
}

extension Stepped {
    public var entry: ModelRegistry.Entry { model as! ModelRegistry.Entry }
}
