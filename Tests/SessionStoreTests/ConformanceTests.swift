import Dispatch
import Foundation
import Locking
import ModelFormat
import ModelRuntime
import SessionStore
import Redis
import SessionStoreRedis
import SessionStoreSQLite
import TestSupport
import Testing

/// The promises every session driver makes (`SessionDriver`), checked against each driver
/// with the same tests. A new driver joins by adding a case to `Driver`.
@Suite struct ConformanceTests {
    enum Driver: String, CaseIterable, CustomStringConvertible {
        case memory, sqlite, redis, redisCluster
        var description: String { rawValue }
        var isDurable: Bool { self != .memory }
        /// Whether why a session went (deleted, evicted, expired) outlives a restart.
        var keepsTombstones: Bool { self == .redis || self == .redisCluster }
    }

    /// One Redis and one Redis Cluster (3 primaries, a replica each) for the whole suite,
    /// started on first use; each harness keeps its keys under a prefix of its own.
    static let redis = Result { try RedisServers.single() }
    static let cluster = Result { try RedisServers.cluster() }

    /// A driver on a manual clock (TTL 60 s), in a directory of its own, that can be reopened.
    final class Harness {
        let kind: Driver
        let clock = ManualClock()
        let events = CountedEvents()
        let path = NSTemporaryDirectory() + "lstm-conformance-\(UUID().uuidString)/sessions.db"
        let prefix = "conformance-\(UUID().uuidString)"
        let maxSessions: Int
        let evict: Bool
        private(set) var store: any SessionDriver

        init(_ kind: Driver, maxSessions: Int = 1000, evict: Bool = false) throws {
            (self.kind, self.maxSessions, self.evict) = (kind, maxSessions, evict)
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            store = try Self.open(kind, clock: clock, events: events, path: path, prefix: prefix, maxSessions: maxSessions, evict: evict)
            _ = store.load(versions: Versions.none)
        }

        static func open(_ kind: Driver, clock: ManualClock, events: CountedEvents, path: String, prefix: String, maxSessions: Int, evict: Bool) throws -> any SessionDriver {
            switch kind {
            case .memory:
                return MemoryDriver(shards: 4, clock: clock, ttl: 60, maxSessions: maxSessions, evictWhenFull: evict, events: events)
            case .sqlite:
                return try SQLiteDriver(path: path, sync: .process, shards: 4, clock: clock, ttl: 60, maxSessions: maxSessions,
                                        evictWhenFull: evict, events: events)
            case .redis, .redisCluster:
                let servers = try (kind == .redis ? ConformanceTests.redis : ConformanceTests.cluster).get()
                let location = RedisLocation(nodes: [.init(host: "127.0.0.1", port: servers.ports[0])])
                return try RedisDriver(location: location, prefix: prefix, shards: 4, clock: clock, ttl: 60, maxSessions: maxSessions,
                                       evictWhenFull: evict, events: events)
            }
        }

        /// Closes the store and opens it again, bringing back what it stored onto `versions`.
        func restart(_ versions: [ModelRegistry.Entry]) throws -> LoadReport {
            store.close()
            store = try Self.open(kind, clock: clock, events: events, path: path, prefix: prefix, maxSessions: maxSessions, evict: evict)
            return store.load { name, version, _ in versions.first { $0.name == name && $0.version == version } }
        }
    }

    enum Versions {
        static let none: SessionStore.Versions = { _, _, _ in nil }
    }

    /// Versions of one model "m": 1 and 2 share their state's layout and read input alike
    /// (other weights); 3 has another layout; 4 reads three inputs per timestep; 5 reads two,
    /// but by feature name.
    static let v1 = version(1, seed: 1), v2 = version(2, seed: 2), v3 = version(3, hidden: 4), v4 = version(4, input: 3)
    static let v5 = version(5, seed: 1, config: #"{"inputs": {"features": [{"name": "a"}, {"name": "b"}]}}"#)

    static func version(_ v: Int, input: Int = 2, hidden: Int = 3, seed: Int = 0, config: String? = nil) -> ModelRegistry.Entry {
        var tensors = TestModels.lstm(input: input, hidden: hidden)
        for (name, (shape, values)) in tensors {  // distinct weights, so order and version show in the state
            tensors[name] = (shape, values.indices.map { k in Float((k * 7 + seed * 13 + name.count) % 17 - 8) / 20 })
        }
        let model = try! Model.load(path: TestModels.write(tensors, config: config), name: "m")
        return ModelRegistry.Entry(model: model, version: v)
    }

    static func fresh(_ model: ModelRegistry.Entry) -> [Float] { [Float](repeating: 0, count: model.stateWidth) }

    static func step(_ store: any SessionDriver, _ id: String, _ rows: [[Float]], expected: Int? = nil, on model: ModelRegistry.Entry = v1) async -> StepResult {
        await store.step(StepRequest(id: id, rows: rows, expectedStep: expected, readFor: model))
    }

    static func stepped(_ result: StepResult) throws -> Stepped {
        guard case let .stepped(done) = result else { throw Failure("expected a step, got \(result)") }
        return done
    }

    static func refusal(_ result: StepResult) -> SessionError? {
        if case let .refused(error) = result { return error }
        return nil
    }

    struct Failure: Error, CustomStringConvertible { let description: String; init(_ d: String) { description = d } }

    /// The state a fresh session of `model` reaches through `rows`, stepped by the runtime alone.
    static func reference(_ model: ModelRegistry.Entry, _ rows: [[Float]]) -> [Float] {
        var state = fresh(model)
        let runner = model.makeStepper()
        _ = state.withUnsafeMutableBufferPointer { runner.step(rows, state: $0.baseAddress!) }
        return state
    }

    static func row(_ k: Int) -> [Float] { [Float(k % 5) / 4 - 0.5, Float(k % 3) / 2] }

    /// Rows 0..<n stepped into session `id` from every core at once, row k through
    /// `stores[k % stores.count]` (`stepNow`, again while the shard is busy): which row each
    /// step count went to.
    static func stepAtOnce(_ id: String, _ n: Int, on stores: [any SessionDriver]) -> [Int: Int] {
        let counts = Locked([Int: Int]())
        DispatchQueue.concurrentPerform(iterations: n) { k in
            let request = StepRequest(id: id, rows: [row(k)], expectedStep: nil, readFor: v1)
            while true {
                guard let result = stores[k % stores.count].stepNow(request) else { continue }
                if case let .stepped(done) = result { counts.withLock { $0[done.step] = k } }
                return
            }
        }
        return counts.withLock { $0 }
    }

    // MARK: An acknowledged change is stored

    @Test(arguments: Driver.allCases) func anAcknowledgedStepIsWhatTheStoreHoldsAndADurableOneOutlivesARestart(_ kind: Driver) async throws {
        let h = try Harness(kind)
        let id = try await h.store.create(on: Self.v1, state: Self.fresh(Self.v1)).id
        let rows = (0..<5).map(Self.row)
        for (k, r) in rows.enumerated() {
            let done = try Self.stepped(await Self.step(h.store, id, [r], expected: k))
            if let ticket = done.ticket { #expect(try await ticket.wait().get() == ()) }
            #expect(done.step == k + 1)
        }
        let (info, state) = try await h.store.export(id).get()
        #expect(info.step == 5 && state == Self.reference(Self.v1, rows))
        guard kind.isDurable else { return }
        let report = try h.restart([Self.v1])
        #expect(report.live == 1 && report.expired == 0 && report.orphaned == 0)
        let (back, backState) = try await h.store.export(id).get()
        #expect(back.step == 5 && backState == state && back.model === Self.v1 && back.created == info.created)
    }

    @Test(arguments: Driver.allCases) func aDeletedSessionIsGoneAndStaysGoneAcrossARestart(_ kind: Driver) async throws {
        let h = try Harness(kind)
        let id = try await h.store.create(on: Self.v1, state: Self.fresh(Self.v1)).id
        try await h.store.delete(id).get()
        #expect(await h.store.info(id).error == .notFound("session '\(id)' was deleted"))
        #expect(h.store.activeCount == 0)
        guard kind.isDurable else { return }
        #expect(try h.restart([Self.v1]).live == 0)
        #expect(await h.store.info(id).error == .notFound(kind.keepsTombstones ? "session '\(id)' was deleted" : "no session '\(id)'"))
    }

    // MARK: Steps on one session are strictly ordered

    @Test(arguments: Driver.allCases) func concurrentStepsAreEachAppliedOnceInTheOrderOfTheirStepCounts(_ kind: Driver) async throws {
        let h = try Harness(kind)
        let store = h.store
        let id = try await store.create(on: Self.v1, state: Self.fresh(Self.v1)).id
        let n = 64
        let results = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for k in 0..<n {
                group.addTask {
                    let done = try Self.stepped(await Self.step(store, id, [Self.row(k)]))
                    _ = await done.ticket?.wait()
                    return (done.step, k)
                }
            }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        // every count from 1 to n once: none lost, none doubled
        #expect(results.keys.sorted() == Array(1...n))
        // the state is the rows applied in the order of the counts they were given
        let order = (1...n).map { Self.row(results[$0]!) }
        #expect(try await store.export(id).get().1 == Self.reference(Self.v1, order))
    }

    @Test(arguments: Driver.allCases) func stepsTakenAtOnceOnManyThreadsAreOrderedToo(_ kind: Driver) async throws {
        let h = try Harness(kind)
        let store = h.store
        // `stepNow` from every core at once, four sessions in turn (a race shows by chance, so
        // it is given several): a thread that finds the shard busy tries again
        for _ in 0..<4 {
            let id = try await store.create(on: Self.v1, state: Self.fresh(Self.v1)).id
            let n = 400
            let results = Self.stepAtOnce(id, n, on: [store])
            #expect(results.keys.sorted() == Array(1...n))
            let order = (1...n).map { Self.row(results[$0]!) }
            #expect(try await store.export(id).get().1 == Self.reference(Self.v1, order))
        }
    }

    // MARK: expected_step means the same everywhere

    @Test(arguments: Driver.allCases) func ofStepsRacingWithOneExpectedStepExactlyOneWins(_ kind: Driver) async throws {
        let h = try Harness(kind)
        let store = h.store
        let id = try await store.create(on: Self.v1, state: Self.fresh(Self.v1)).id
        let outcomes = await withTaskGroup(of: StepResult.self) { group in
            for k in 0..<16 { group.addTask { await Self.step(store, id, [Self.row(k)], expected: 0) } }
            return await group.reduce(into: [StepResult]()) { $0.append($1) }
        }
        let won = outcomes.compactMap { try? Self.stepped($0) }
        #expect(won.count == 1 && won.first?.step == 1)
        let lost = outcomes.compactMap(Self.refusal)
        #expect(lost.count == 15)
        #expect(lost.allSatisfy { $0 == .conflict("session '\(id)' is at step 1 but the request expected step 0; nothing was changed") })
    }

    @Test(arguments: Driver.allCases) func aRefusedStepChangesNothing(_ kind: Driver) async throws {
        let h = try Harness(kind)
        let id = try await h.store.create(on: Self.v1, state: Self.fresh(Self.v1)).id
        _ = try Self.stepped(await Self.step(h.store, id, [Self.row(1)]))
        let before = try await h.store.export(id).get()
        #expect(Self.refusal(await Self.step(h.store, id, [Self.row(2)], expected: 0)) != nil)  // the wrong step
        #expect(Self.refusal(await Self.step(h.store, id, [[Float.nan, 1]])) != nil)  // not finite
        let migrated = await h.store.migrate(id, to: Self.v3, expectedStep: nil)  // another layout
        #expect(migrated.error?.description.contains("their states differ") == true)
        let after = try await h.store.export(id).get()
        #expect(after.0.step == before.0.step && after.1 == before.1 && after.0.model === Self.v1)
        let racing = await h.store.migrate(id, to: Self.v2, expectedStep: 0)
        #expect(racing.error == .conflict("session '\(id)' is at step 1 but the request expected step 0; nothing was changed"))
    }

    // MARK: Expiry and capacity as configured

    @Test(arguments: Driver.allCases) func aSessionIdleLongerThanTheTTLIsGone(_ kind: Driver) async throws {
        let h = try Harness(kind)
        let kept = try await h.store.create(on: Self.v1, state: Self.fresh(Self.v1)).id
        let idle = try await h.store.create(on: Self.v1, state: Self.fresh(Self.v1)).id
        h.clock.advance(40)
        _ = try Self.stepped(await Self.step(h.store, kept, [Self.row(0)]))  // use keeps it
        h.clock.advance(30)
        #expect(await h.store.info(idle).error == .notFound("session '\(idle)' expired after 60 s idle"))
        #expect(try await h.store.info(kept).get().step == 1)
        h.clock.advance(61)
        let swept = await h.store.sweep()
        #expect(swept == 1 && h.store.activeCount == 0)
        #expect(h.events["expired"] == 2)
        guard kind.isDurable else { return }
        #expect(try h.restart([Self.v1]).live == 0)
    }

    @Test(arguments: Driver.allCases) func aFullStoreRefusesWithTheSecondsUntilRoom(_ kind: Driver) async throws {
        let h = try Harness(kind, maxSessions: 2)
        _ = try await h.store.create(on: Self.v1, state: Self.fresh(Self.v1))
        h.clock.advance(10)
        _ = try await h.store.create(on: Self.v1, state: Self.fresh(Self.v1))
        await #expect(throws: SessionError.full("the server holds its maximum of 2 sessions; delete one or retry in 50 s", retryAfter: 50)) {
            _ = try await h.store.create(on: Self.v1, state: Self.fresh(Self.v1))
        }
        h.clock.advance(51)  // the first expires: room again
        _ = try await h.store.create(on: Self.v1, state: Self.fresh(Self.v1))
        #expect(h.store.activeCount == 2)
    }

    @Test(arguments: Driver.allCases) func aFullStoreThatEvictsDropsTheLeastRecentlyUsed(_ kind: Driver) async throws {
        let h = try Harness(kind, maxSessions: 2, evict: true)
        let a = try await h.store.create(on: Self.v1, state: Self.fresh(Self.v1)).id
        h.clock.advance(1)
        let b = try await h.store.create(on: Self.v1, state: Self.fresh(Self.v1)).id
        h.clock.advance(1)
        _ = try Self.stepped(await Self.step(h.store, a, [Self.row(0)]))  // a is now the more recent
        let c = try await h.store.create(on: Self.v1, state: Self.fresh(Self.v1)).id
        #expect(await h.store.info(b).error == .notFound("session '\(b)' was evicted (least recently used) to make room"))
        let (stepA, stepC) = (try await h.store.info(a).get().step, try await h.store.info(c).get().step)
        #expect(stepA == 1 && stepC == 0)
        #expect(h.store.activeCount == 2 && h.events["evicted"] == 1)
        guard kind.isDurable else { return }
        #expect(try h.restart([Self.v1]).live == 2)
    }

    // MARK: State export and import

    @Test(arguments: Driver.allCases) func aStateImportedIntoAnotherSessionStepsTheSame(_ kind: Driver) async throws {
        let h = try Harness(kind)
        let a = try await h.store.create(on: Self.v1, state: Self.fresh(Self.v1)).id
        for k in 0..<3 { _ = try Self.stepped(await Self.step(h.store, a, [Self.row(k)])) }
        let (info, state) = try await h.store.export(a).get()
        let b = try await h.store.create(on: Self.v1, state: Self.fresh(Self.v1)).id
        #expect(try await h.store.replaceState(b, state: state, readFor: Self.v1, step: info.step).get().step == 3)
        let next = [Self.row(7)]
        let stepA = try Self.stepped(await Self.step(h.store, a, next)), stepB = try Self.stepped(await Self.step(h.store, b, next))
        #expect(stepA.outputs == stepB.outputs && stepA.step == stepB.step)
        // a state of another layout is refused, and nothing changes
        let other = await h.store.replaceState(b, state: Self.fresh(Self.v3), readFor: Self.v3, step: 0)
        #expect(other.error?.description.contains("whose state is (\(Self.v1.stateLayout)), not (\(Self.v3.stateLayout))") == true)
        #expect(try await h.store.info(b).get().step == 4)
    }

    @Test(arguments: Driver.allCases) func aSessionStartedUnderAClientsNameIsResetByStartingItAgain(_ kind: Driver) async throws {
        let h = try Harness(kind)
        let name = "seq:1:m:n7"
        _ = try await h.store.start(name, on: Self.v1, state: Self.fresh(Self.v1))
        _ = try Self.stepped(await Self.step(h.store, name, [Self.row(1)]))
        let again = try await h.store.start(name, on: Self.v2, state: Self.fresh(Self.v2))
        #expect(again.id == name && again.step == 0 && again.model === Self.v2 && h.store.activeCount == 1)
        guard kind.isDurable else { return }
        #expect(try h.restart([Self.v2]).live == 1)
        #expect(try await h.store.info(name).get().model === Self.v2)
    }

    // MARK: Version pinning

    @Test(arguments: Driver.allCases) func aSessionStaysOnItsVersionUntilItMigrates(_ kind: Driver) async throws {
        let h = try Harness(kind)
        let id = try await h.store.create(on: Self.v1, state: Self.fresh(Self.v1)).id
        // rows read for a version that reads input otherwise are sent back to be read again
        for other in [Self.v5, Self.v4] {
            let rows: [[Float]] = [Array(repeating: 1, count: other.model.pipeline.inputSize)]
            guard case let .readFor(model) = await Self.step(h.store, id, rows, on: other) else { throw Failure("expected readFor, for version \(other.version)") }
            let stepNow = try await h.store.info(id).get().step
            #expect(model === Self.v1 && stepNow == 0)
        }
        // rows read for a version that reads alike run on the session's own
        let done = try Self.stepped(await Self.step(h.store, id, [Self.row(1)], on: Self.v2))
        #expect(done.model === Self.v1 && done.outputs.first == Self.v1.makeStepper().stepping(Self.row(1), from: Self.fresh(Self.v1)))
        let moved = try await h.store.migrate(id, to: Self.v2, expectedStep: 1).get()
        #expect(moved.model === Self.v2 && moved.step == 1)
        #expect(try Self.stepped(await Self.step(h.store, id, [Self.row(2)])).model === Self.v2)
        #expect(await h.store.migrate(id, to: Self.version(1, seed: 1).renamed("other"), expectedStep: nil).error?.description.contains("cannot move to model 'other'") == true)
    }

    @Test func aStoredSessionComesBackOnlyOntoTheVeryFilesItRanOn() async throws {
        let h = try Harness(.sqlite)
        let id = try await h.store.create(on: Self.v1, state: Self.fresh(Self.v1)).id
        let changed = Self.version(1, seed: 5)  // version 1, other weights
        #expect(try h.restart([changed]).orphaned == 1)
        #expect(await h.store.info(id).error?.description.contains("ran on other files of model 'm' version 1") == true)
        #expect(try h.restart([]).orphaned == 1)
        #expect(await h.store.info(id).error == .gone("session '\(id)' runs model 'm' version 1, which is no longer served"))
        #expect(try h.restart([Self.v1]).live == 1)  // kept, so the version's return brings it back
        #expect(try await h.store.info(id).get().step == 0)
    }

    // MARK: Failure modes

    @Test(arguments: Driver.allCases) func unknownSessionsAreNotFoundAndAClosedStoreTakesNoChange(_ kind: Driver) async throws {
        let h = try Harness(kind)
        #expect(Self.refusal(await Self.step(h.store, "nope", [Self.row(0)])) == .notFound("no session 'nope'"))
        #expect(await h.store.delete("nope").error == .notFound("no session 'nope'"))
        let id = try await h.store.create(on: Self.v1, state: Self.fresh(Self.v1)).id
        h.store.close()
        #expect(Self.refusal(await Self.step(h.store, id, [Self.row(0)])) == .unavailable("the session store is closed (the server is stopping)"))
        await #expect(throws: SessionError.unavailable("the session store is closed (the server is stopping)")) {
            _ = try await h.store.create(on: Self.v1, state: Self.fresh(Self.v1))
        }
    }
}

extension Result {
    var error: Failure? {
        if case let .failure(e) = self { return e }
        return nil
    }
}

extension SessionStepper {
    /// One step of `row` from `state`, alone.
    func stepping(_ row: [Float], from state: [Float]) -> [Float]? {
        var s = state
        return s.withUnsafeMutableBufferPointer { step([row], state: $0.baseAddress!)?.first }
    }
}

extension ModelRegistry.Entry {
    /// The same weights under another model name.
    func renamed(_ name: String) -> ModelRegistry.Entry {
        ModelRegistry.Entry(model: try! Model.load(path: model.weightsPath, name: name), version: version)
    }
}
