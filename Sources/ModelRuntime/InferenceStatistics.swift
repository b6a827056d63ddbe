import Foundation
import Synchronization

/// Per model: how many inferences it answered and where their time went, the counts and
/// cumulative nanoseconds Triton reports in its statistics extension. Lock-free counters, so
/// every request can add to them.
public final class InferenceStatistics: Sendable {
    /// A count and its cumulative nanoseconds.
    public final class Duration: Sendable {
        let count = Atomic<Int>(0), nanoseconds = Atomic<Int>(0)
        public var value: (count: Int, nanoseconds: Int) { (count.load(ordering: .relaxed), nanoseconds.load(ordering: .relaxed)) }

        func add(_ ns: Int) {
            count.add(1, ordering: .relaxed)
            nanoseconds.add(ns, ordering: .relaxed)
        }
    }

    /// Requests answered, and failed, from arrival to answer.
    public let success = Duration(), fail = Duration()
    /// Waiting for a session's shard (sequences and steps that found it busy).
    public let queue = Duration()
    /// Reading the request's tensors, running the model, writing the answer.
    public let computeInput = Duration(), computeInfer = Duration(), computeOutput = Duration()
    /// Samples inferred (a batch of 4 counts 4) and model executions (a batch counts 1).
    let inferences = Atomic<Int>(0), executions = Atomic<Int>(0)
    /// When the last successful inference ended, in `now()` nanoseconds; 0 before the first.
    /// Kept on the monotonic clock so that a request reads no wall clock for it.
    let lastInference = Atomic<Int>(0)

    public init() {}

    public var inferenceCount: Int { inferences.load(ordering: .relaxed) }
    public var executionCount: Int { executions.load(ordering: .relaxed) }
    /// Milliseconds since 1970 of the last successful inference; 0 before the first.
    public var lastInferenceMilliseconds: Int {
        let last = lastInference.load(ordering: .relaxed)
        guard last != 0 else { return 0 }
        return Int(Date().timeIntervalSince1970 * 1000) - (Self.now() - last) / 1_000_000
    }

    /// One request answered: `samples` samples in one execution; the times in nanoseconds.
    public func succeeded(samples: Int, input: Int, infer: Int, output: Int, total: Int) {
        inferences.add(samples, ordering: .relaxed)
        executions.add(1, ordering: .relaxed)
        computeInput.add(input)
        computeInfer.add(infer)
        computeOutput.add(output)
        success.add(total)
        lastInference.store(Self.now(), ordering: .relaxed)
    }

    public func failed(total: Int) { fail.add(total) }
    public func queued(_ ns: Int) { queue.add(ns) }

    /// Monotonic nanoseconds, for the differences above (read directly: through `DispatchTime`
    /// each read cost a second call, four times a request).
    @inline(__always)
    public static func now() -> Int {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return t.tv_sec * 1_000_000_000 + t.tv_nsec
    }
}
