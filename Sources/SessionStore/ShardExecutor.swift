import Dispatch
import Foundation
import Locking

/// The serial executor of one session shard. Jobs enqueued by tasks run one at a time on GCD,
/// as a default actor's would; in addition, a thread that finds the shard idle (no job running,
/// none waiting) may take it and run actor-isolated code on the spot (`runIfIdle`), which
/// spares a step the suspend, task and thread hops when nothing contends for its shard.
/// Either way one thread at a time owns the shard, and `checkIsolated` verifies it.
final class ShardExecutor: SerialExecutor, @unchecked Sendable {
    private struct State {
        var jobs: [UnownedJob] = []
        var head = 0
        /// A drain loop or a `runIfIdle` caller owns the shard.
        var busy = false
        var owner: pthread_t?
    }

    private let state = Locked(State())

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let start = state.withLock { s -> Bool in
            s.jobs.append(job)
            guard !s.busy else { return false }
            s.busy = true
            return true
        }
        if start { DispatchQueue.global().async { self.drain() } }
    }

    /// Runs queued jobs until none are left, then gives the shard up.
    private func drain() {
        while true {
            let next = state.withLock { s -> UnownedJob? in
                guard s.head < s.jobs.count else {
                    s.jobs.removeAll(keepingCapacity: true)
                    s.head = 0
                    s.busy = false
                    s.owner = nil
                    return nil
                }
                s.owner = pthread_self()
                defer { s.head += 1 }
                return s.jobs[s.head]
            }
            guard let next else { return }
            next.runSynchronously(on: asUnownedSerialExecutor())
        }
    }

    /// Runs `body` on this thread as the shard's owner if the shard is idle; nil if it is not
    /// (then the caller awaits the actor instead). Jobs that arrive meanwhile run after it.
    func runIfIdle<T>(_ body: () throws -> T) rethrows -> T? {
        let taken = state.withLock { s -> Bool in
            guard !s.busy else { return false }
            s.busy = true
            s.owner = pthread_self()
            return true
        }
        guard taken else { return nil }
        defer {
            let pending = state.withLock { s -> Bool in
                s.owner = nil
                if s.head < s.jobs.count { return true }  // stays busy: the drain takes over
                s.busy = false
                return false
            }
            if pending { DispatchQueue.global().async { self.drain() } }
        }
        return try body()
    }

    func checkIsolated() {
        let owned = state.withLock { s in s.owner.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
        precondition(owned, "session shard state touched off its executor")
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }
}
