import Dispatch
import Foundation
import Locking
@testable import SessionStore
import Testing

/// An actor on a ShardExecutor, counting.
private actor Tally {
    nonisolated let executor = ShardExecutor()
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    var count = 0
    func add() { count += 1 }
    func hold(_ entered: DispatchSemaphore, _ release: DispatchSemaphore) {
        entered.signal()
        release.wait()
        count += 1
    }
}

@Suite struct ShardExecutorTests {
    @Test func onTheSpotAndQueuedCallsTogetherLoseAndDoubleNothing() async {
        let tally = Tally()
        let threads = 8, perThread = 2000
        let fast = Locked(0)
        let tasks = Locked<[Task<Void, Never>]>([])
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for k in 0..<perThread {
                // every other call always goes through the actor's queue
                if k % 2 == 0, tally.executor.runIfIdle({ tally.assumeIsolated { $0.add() } }) != nil {
                    fast.withLock { $0 += 1 }
                } else {
                    let task = Task { await tally.add() }
                    tasks.withLock { $0.append(task) }
                }
            }
            _ = t
        }
        for task in tasks.withLock({ $0 }) { await task.value }
        #expect(await tally.count == threads * perThread)
        #expect(fast.withLock { $0 } > 0)
    }

    @Test func aBusyShardIsNotTakenAndIsFreeAgainAfterwards() async throws {
        let tally = Tally()
        let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let holder = Task.detached { await tally.hold(entered, release) }
        entered.wait()
        #expect(tally.executor.runIfIdle { 1 } == nil)
        release.signal()
        await holder.value
        // the drain gives the shard up once its queue is empty
        var taken: Int?
        for _ in 0..<1000 where taken == nil {
            taken = tally.executor.runIfIdle { tally.assumeIsolated { $0.count } }
            if taken == nil { try await Task.sleep(for: .milliseconds(1)) }
        }
        #expect(taken == 1)
    }
}
