import Foundation
import Redis
import TestSupport
import Testing

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite struct HashSlotTests {
    @Test func theChecksumAndSlotsAreRedisClusters() {
        #expect(HashSlot.crc16(bytes("123456789")) == 0x31C3)  // the spec's check value
        #expect(HashSlot.of("foo") == 12182 && HashSlot.of("") == 0)
        // a hash tag: the first {…} that is not empty
        #expect(HashSlot.of("{user1000}.following") == HashSlot.of("{user1000}.followers"))
        #expect(HashSlot.of("{user1000}.following") == HashSlot.of("user1000"))
        #expect(HashSlot.of("foo{}{bar}") == HashSlot.of("foo{}{bar}".utf8.map { $0 }))
        #expect(HashSlot.of("foo{}{bar}") != HashSlot.of("bar"))  // {} is empty: the whole key
        #expect(HashSlot.of("foo{{bar}}zap") == HashSlot.of("{bar"))
        #expect(HashSlot.of("foo{bar}{zap}") == HashSlot.of("bar"))
    }

    @Test func locationsAreReadAndBadOnesSayHowToWriteThem() throws {
        let one = try RedisLocation.parse("redis://127.0.0.1:6379").get()
        #expect(one.nodes == [.init(host: "127.0.0.1", port: 6379)] && one.database == 0)
        let many = try RedisLocation.parse("redis://a:1,b:2,[::1]:3/4").get()
        #expect(many.nodes.map(\.description) == ["a:1", "b:2", "::1:3"] && many.database == 4)
        for bad in ["http://a:1", "redis://", "redis://a", "redis://a:0", "redis://a:70000", "redis://a:1,", "redis://a:1/16", "redis://a:1/x"] {
            guard case let .failure(e) = RedisLocation.parse(bad) else { Issue.record("\(bad) was read"); continue }
            #expect(e.description.contains("redis://HOST:PORT[,HOST:PORT…][/DB]"))
        }
    }
}

@Suite(.serialized) struct SingleRedisTests {
    @Test func bytesGoAndComeBackWhole() throws {
        let redis = try RedisServers.single()
        let client = try RedisClient(RedisLocation(nodes: [.init(host: "127.0.0.1", port: redis.ports[0])]))
        #expect(!client.isCluster)
        let value: [UInt8] = [0, 1, 2, 255, 0, 13, 10] + Array(repeating: 7, count: 100_000)
        #expect(try client.call(key: bytes("k"), [bytes("SET"), bytes("k"), value]) == .status("OK"))
        #expect(try client.call(key: bytes("k"), [bytes("GET"), bytes("k")]) == .bytes(value))
        #expect(try client.call(key: bytes("none"), [bytes("GET"), bytes("none")]) == .null)
        let replies = try client.pipeline(key: bytes("n"), [[bytes("INCR"), bytes("n")], [bytes("INCRBY"), bytes("n"), bytes("41")], [bytes("HGET"), bytes("n"), bytes("f")]])
        #expect(replies[0] == .integer(1) && replies[1] == .integer(42))
        #expect(replies[2].errorText?.hasPrefix("WRONGTYPE") == true)  // an error reply is a reply
        #expect(try client.call(key: [], [bytes("SET"), bytes(""), []]) == .status("OK"))  // empty arguments
    }

    @Test func aDatabaseNumberSelectsThatDatabaseOnEveryConnection() throws {
        let redis = try RedisServers.single()
        let node = RedisLocation.Node(host: "127.0.0.1", port: redis.ports[0])
        let three = try RedisClient(RedisLocation(nodes: [node], database: 3))
        _ = try three.call(key: bytes("k"), [bytes("SET"), bytes("k"), bytes("v")])
        // connections made later (several threads at once) select it too
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            #expect((try? three.call(key: bytes("k"), [bytes("GET"), bytes("k")])) == .bytes(bytes("v")))
        }
        #expect(try redis.cli(redis.ports[0], "-n", "3", "GET", "k").contains("v"))
        #expect(try redis.cli(redis.ports[0], "GET", "k").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }

    @Test func aDeadServerIsAConnectErrorAndABrokenConnectionIsDropped() throws {
        let redis = try RedisServers.single()
        let port = redis.ports[0]
        let client = try RedisClient(RedisLocation(nodes: [.init(host: "127.0.0.1", port: port)]), timeoutMilliseconds: 500)
        _ = try client.call(key: bytes("k"), [bytes("SET"), bytes("k"), bytes("v")])
        redis.kill(port)
        let started = Date()
        #expect(throws: RedisError.self) { try client.call(key: bytes("k"), [bytes("GET"), bytes("k")]) }
        #expect(throws: RedisError.self) { try client.call(key: bytes("k"), [bytes("GET"), bytes("k")]) }
        #expect(Date().timeIntervalSince(started) < 3)
        #expect(throws: RedisError.self) { try RedisClient(RedisLocation(nodes: [.init(host: "127.0.0.1", port: port)]), timeoutMilliseconds: 500) }
    }

    @Test func aSilentServerTimesOut() throws {
        let redis = try RedisServers.single()
        let port = redis.ports[0]
        let client = try RedisClient(RedisLocation(nodes: [.init(host: "127.0.0.1", port: port)]), timeoutMilliseconds: 300)
        // the server holds every client's commands for a second
        _ = try redis.cli(port, "CLIENT", "PAUSE", "1000", "ALL")
        let started = Date()
        #expect(throws: RedisError.self) { try client.call(key: bytes("k"), [bytes("GET"), bytes("k")]) }
        #expect(Date().timeIntervalSince(started) < 0.9)
    }
}

@Suite(.serialized) struct RedisClusterTests {
    @Test func keysGoToTheirSlotsNodeAndTheClientSlotsAgreeWithTheCluster() throws {
        let cluster = try RedisServers.cluster()
        let client = try RedisClient(RedisLocation(nodes: [.init(host: "127.0.0.1", port: cluster.ports[0])]))
        #expect(client.isCluster && client.primaries.count == 3)
        for k in 0..<200 {
            let key = bytes("key:\(k)")
            #expect(try client.call(key: key, [bytes("SET"), key, bytes(String(k))]) == .status("OK"))
        }
        for k in 0..<200 {
            let key = bytes("key:\(k)")
            #expect(try client.call(key: key, [bytes("GET"), key]) == .bytes(bytes(String(k))))
        }
        for key in ["a", "key:7", "{tag}x", "x{tag}", "\u{e9}t\u{e9}"] {
            let served = try cluster.cli(cluster.ports[0], "CLUSTER", "KEYSLOT", key).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(served.hasSuffix(String(HashSlot.of(key))), "\(key): \(served)")
        }
        // every primary holds some of them
        let counts = client.onEveryPrimary([bytes("DBSIZE")]).map { try? $0.reply.get().integer }
        #expect(counts.allSatisfy { ($0 ?? 0) > 0 } && counts.reduce(0) { $0 + ($1 ?? 0) } == 200)
    }

    @Test func aSlotMovingIsFollowedThroughAskThenMoved() throws {
        let cluster = try RedisServers.cluster()
        let client = try RedisClient(RedisLocation(nodes: [.init(host: "127.0.0.1", port: cluster.ports[0])]))
        let key = "moving", slot = HashSlot.of(key)
        _ = try client.call(key: bytes(key), [bytes("SET"), bytes(key), bytes("v")])
        let primaries = client.primaries.map(\.port)
        func owner() throws -> Int {
            try primaries.first { try cluster.cli($0, "CLUSTER", "COUNTKEYSINSLOT", String(slot)).hasPrefix("1") }!
        }
        let source = try owner(), target = primaries.first { $0 != source }!
        func id(_ port: Int) throws -> String { try cluster.cli(port, "CLUSTER", "MYID").trimmingCharacters(in: .whitespacesAndNewlines) }
        let (sourceID, targetID) = (try id(source), try id(target))
        // mid-migration: the key is on the target, the source answers ASK for it
        _ = try cluster.cli(target, "CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceID)
        _ = try cluster.cli(source, "CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetID)
        _ = try cluster.cli(source, "MIGRATE", "127.0.0.1", String(target), "", "0", "5000", "KEYS", key)
        #expect(try cluster.cli(source, "GET", key).contains("ASK"))
        #expect(try client.call(key: bytes(key), [bytes("GET"), bytes(key)]) == .bytes(bytes("v")))
        // done: every node learns the new owner; the source answers MOVED
        for port in cluster.ports { _ = try cluster.cli(port, "CLUSTER", "SETSLOT", String(slot), "NODE", targetID) }
        #expect(try cluster.cli(source, "GET", key).contains("MOVED"))
        #expect(try client.call(key: bytes(key), [bytes("SET"), bytes(key), bytes("w")]) == .status("OK"))
        #expect(try cluster.cli(target, "GET", key).contains("w"))
    }

    @Test func afterAPrimaryIsKilledItsReplicaServesItsSlots() throws {
        let cluster = try RedisServers.cluster()
        let client = try RedisClient(RedisLocation(nodes: cluster.ports.map { .init(host: "127.0.0.1", port: $0) }), timeoutMilliseconds: 500)
        let key = bytes("survivor")
        _ = try client.call(key: key, [bytes("SET"), key, bytes("v")])
        // until its replica has it (a new cluster's replicas take a moment to sync)
        var replicas = 0
        for _ in 0..<50 where replicas < 1 {
            replicas = try client.call(key: key, [bytes("WAIT"), bytes("1"), bytes("200")]).integer ?? 0
        }
        #expect(replicas == 1)
        let primary = try #require(client.primaries.first { node in
            (try? cluster.cli(node.port, "CLUSTER", "COUNTKEYSINSLOT", String(HashSlot.of(key))).hasPrefix("1")) == true
        })
        cluster.kill(primary.port)
        let started = Date()
        var value: RedisReply?
        while value == nil, Date().timeIntervalSince(started) < 20 {
            value = try? client.call(key: key, [bytes("GET"), key])
            if value?.errorText != nil { value = nil }  // CLUSTERDOWN while it fails over
            if value == nil { Thread.sleep(forTimeInterval: 0.2) }
        }
        #expect(value == .bytes(bytes("v")))
        #expect(!client.primaries.contains(primary))
    }
}
