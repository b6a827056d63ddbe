import Foundation
import Redis
import SessionStore
import SessionStoreRedis
import TestSupport
import Testing

/// What the conformance suite cannot see from one driver: two servers (two drivers, each with
/// its own cache and locks) on one Redis. Within a process a shard's lock orders a session's
/// calls; between processes only the revision check does.
@Suite struct RedisSharingTests {
    static func pair() throws -> (RedisDriver, RedisDriver) {
        let servers = try ConformanceTests.redis.get()
        let location = RedisLocation(nodes: [.init(host: "127.0.0.1", port: servers.ports[0])])
        let prefix = "sharing-\(UUID().uuidString)"
        func open() throws -> RedisDriver {
            let d = try RedisDriver(location: location, prefix: prefix, shards: 4, clock: SystemClock(), ttl: 60, maxSessions: 1000,
                                    evictWhenFull: false, events: CountedEvents())
            _ = d.load(versions: { _, _, _ in ConformanceTests.v1 })
            return d
        }
        return (try open(), try open())
    }

    @Test func stepsSentToTwoServersAtOnceAreEachAppliedOnceInOrder() async throws {
        let (a, b) = try Self.pair()
        let id = try await a.create(on: ConformanceTests.v1, state: ConformanceTests.fresh(ConformanceTests.v1)).id
        _ = try await b.info(id).get()  // b holds a copy too, soon stale
        let n = 200
        let results = ConformanceTests.stepAtOnce(id, n, on: [a, b])
        #expect(results.keys.sorted() == Array(1...n))
        let order = (1...n).map { ConformanceTests.row(results[$0]!) }
        let reference = ConformanceTests.reference(ConformanceTests.v1, order)
        let (fromA, fromB) = (try await a.export(id).get().1, try await b.export(id).get().1)
        #expect(fromA == reference && fromB == reference)
    }

    @Test func ofTwoServersSteppingFromOneExpectedStepExactlyOneWins() async throws {
        let (a, b) = try Self.pair()
        let id = try await a.create(on: ConformanceTests.v1, state: ConformanceTests.fresh(ConformanceTests.v1)).id
        _ = try await b.info(id).get()
        for round in 0..<20 {
            let outcomes = await withTaskGroup(of: StepResult.self) { group in
                for (k, store) in [a, b, a, b].enumerated() {
                    group.addTask { await store.step(StepRequest(id: id, rows: [ConformanceTests.row(round * 4 + k)], expectedStep: round, readFor: ConformanceTests.v1)) }
                }
                return await group.reduce(into: [StepResult]()) { $0.append($1) }
            }
            #expect(outcomes.compactMap { try? ConformanceTests.stepped($0) }.count == 1, "round \(round)")
            #expect(outcomes.compactMap(ConformanceTests.refusal).count == 3)
        }
        #expect(try await b.info(id).get().step == 20)
    }
}
