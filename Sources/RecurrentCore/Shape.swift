/// What one sample looks like between two layers: a sequence of rows of shape `dims`, or one
/// value of shape `dims`.
public struct Shape: Sendable, Equatable, CustomStringConvertible {
    public var dims: [Int]
    public var isSequence: Bool
    /// The number of timesteps when it is fixed (the config's window, or RepeatVector's count).
    public var length: Int?

    public init(dims: [Int], isSequence: Bool, length: Int? = nil) {
        self.dims = dims
        self.isSequence = isSequence
        self.length = length
    }

    public static func sequence(_ dims: Int..., length: Int? = nil) -> Shape { Shape(dims: dims, isSequence: true, length: length) }
    public static func vector(_ width: Int) -> Shape { Shape(dims: [width], isSequence: false) }

    /// Values per row (per sample when not a sequence).
    public var width: Int { dims.reduce(1, *) }

    /// Keras's notation: `(T, 50, 50, 1)` per sample, T the timesteps.
    public var description: String {
        let inner = dims.map(String.init)
        let all = isSequence ? [length.map(String.init) ?? "T"] + inner : inner
        return "(\(all.joined(separator: ", ")))"
    }
}
