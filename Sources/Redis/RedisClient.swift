import Locking

/// Redis as one store, whether a single node or a cluster (found out at connect): a command
/// is sent to the node that serves its key's slot, following `MOVED` (and refreshing the slot
/// map) and `ASK` as Redis Cluster clients do. Connections are pooled per node: a caller takes
/// one for its call and gives it back, so each worker thread in effect keeps its own.
public final class RedisClient: Sendable {
    public let location: RedisLocation
    public let timeoutMilliseconds: Int
    /// Whether the deployment is a Redis Cluster (else one node, which serves every slot).
    public let isCluster: Bool
    private let map: Locked<SlotMap>
    private let pools = Locked<[RedisLocation.Node: [Pooled]]>([:])
    /// Idle connections kept per node; more are closed when given back.
    private let poolLimit = 64
    /// Redirects followed for one call before giving up (a slot moving twice under a call).
    private let redirectLimit = 5

    /// Which node serves each slot. For a single Redis every slot is its one node.
    struct SlotMap: Sendable {
        var owner: [Int16]
        var nodes: [RedisLocation.Node]

        init(single node: RedisLocation.Node) {
            owner = [Int16](repeating: 0, count: HashSlot.count)
            nodes = [node]
        }

        init(owner: [Int16], nodes: [RedisLocation.Node]) { (self.owner, self.nodes) = (owner, nodes) }

        func node(_ slot: Int) -> RedisLocation.Node? {
            let k = Int(owner[slot])
            return k >= 0 ? nodes[k] : nil
        }
    }

    /// A connection as the pool holds it (connections are not shared between threads).
    private final class Pooled: @unchecked Sendable {
        let connection: RedisConnection
        init(_ c: RedisConnection) { connection = c }
    }

    /// Connects to the first seed that answers and reads whether it is a cluster (and its
    /// slot map when it is).
    public init(_ location: RedisLocation, timeoutMilliseconds: Int = 2000) throws(RedisError) {
        self.location = location
        self.timeoutMilliseconds = timeoutMilliseconds
        var failures: [String] = []
        for seed in location.nodes {
            let c: RedisConnection
            do { c = try RedisConnection(host: seed.host, port: seed.port, timeoutMilliseconds: timeoutMilliseconds) } catch {
                failures.append(error.description)
                continue
            }
            let reply = try c.call("CLUSTER", "SLOTS")
            if let e = reply.errorText {
                guard e.contains("cluster support disabled") else { throw .protocolError("\(seed) answered CLUSTER SLOTS with '\(e)'") }
                guard location.nodes.count == 1 else {
                    throw .protocolError("\(seed) is not in cluster mode, so list it alone (several nodes are seeds of one cluster)")
                }
                isCluster = false
                map = Locked(SlotMap(single: seed))
                if location.database != 0 {
                    let selected = try c.call("SELECT", String(location.database))
                    if let e = selected.errorText { throw .protocolError("SELECT \(location.database): \(e)") }
                    // this connection has the database selected: keep it
                }
                give(c, to: seed)
                return
            }
            guard location.database == 0 else { throw .protocolError("a Redis Cluster has database 0 only; drop /\(location.database) from the URL") }
            isCluster = true
            map = Locked(try Self.slotMap(reply, queried: seed))
            give(c, to: seed)
            return
        }
        throw .connect(failures.joined(separator: "; "))
    }

    /// Reads a `CLUSTER SLOTS` reply: ranges, each with its primary first.
    static func slotMap(_ reply: RedisReply, queried: RedisLocation.Node) throws(RedisError) -> SlotMap {
        guard let ranges = reply.array else { throw .protocolError("CLUSTER SLOTS did not answer an array") }
        var owner = [Int16](repeating: -1, count: HashSlot.count)
        var nodes: [RedisLocation.Node] = []
        for range in ranges {
            guard let r = range.array, r.count >= 3, let start = r[0].integer, let end = r[1].integer,
                  0 <= start, start <= end, end < HashSlot.count, let primary = r[2].array, primary.count >= 2,
                  let host = primary[0].text, let port = primary[1].integer else {
                throw .protocolError("CLUSTER SLOTS answered a range it cannot read")
            }
            // an empty host means "the node you asked"
            let node = RedisLocation.Node(host: host.isEmpty ? queried.host : host, port: port)
            let k: Int
            if let found = nodes.firstIndex(of: node) { k = found } else { k = nodes.count; nodes.append(node) }
            for s in start...end { owner[s] = Int16(k) }
        }
        return SlotMap(owner: owner, nodes: nodes)
    }

    /// The node that serves `key`'s slot, as the slot map has it now.
    public func node(forKey key: [UInt8]) -> RedisLocation.Node? {
        let slot = HashSlot.of(key)
        return map.withLock { $0.node(slot) }
    }

    /// The primaries, as the slot map has them.
    public var primaries: [RedisLocation.Node] { map.withLock { $0.nodes } }

    /// Reads the slot map again from any node that answers.
    public func refreshSlots() throws(RedisError) {
        guard isCluster else { return }
        var failures: [String] = []
        for node in Set(primaries).union(location.nodes) {
            do {
                let reply = try withConnection(node) { c throws(RedisError) in try c.call("CLUSTER", "SLOTS") }
                if reply.errorText != nil { continue }
                let fresh = try Self.slotMap(reply, queried: node)
                map.withLock { $0 = fresh }
                return
            } catch {
                failures.append(error.description)
            }
        }
        throw .connect("no node answered for the slot map: " + failures.joined(separator: "; "))
    }

    /// One command for `key`'s slot (see `pipeline`).
    public func call(key: [UInt8], _ command: [[UInt8]]) throws(RedisError) -> RedisReply {
        try pipeline(key: key, [command])[0]
    }

    /// Commands sent together to the node that serves `key`'s slot, their replies in order
    /// (all of them about that slot, so a redirect of the first applies to all). Redirects
    /// are followed: a `MOVED` or `ASK` reply means the command did not run. A connection
    /// failure is thrown as is: the commands may or may not have run, and only the caller
    /// knows whether sending them again is safe.
    public func pipeline(key: [UInt8], _ commands: [[[UInt8]]]) throws(RedisError) -> [RedisReply] {
        let slot = HashSlot.of(key)
        guard let first = map.withLock({ $0.node(slot) }) else {
            try? refreshSlots()
            throw .connect("no node serves slot \(slot) (the cluster is not covering every slot)")
        }
        var node = first
        var asking = false
        for _ in 0...redirectLimit {
            let sent = asking ? [["ASKING"].map { Array($0.utf8) }] + commands : commands
            var replies: [RedisReply]
            do {
                replies = try withConnection(node) { c throws(RedisError) in try c.pipeline(sent) }
            } catch {
                if isCluster { try? refreshSlots() }  // a failover moves the slot: the next call finds it
                throw error
            }
            if asking { replies.removeFirst() }
            guard let e = replies.first?.errorText else { return replies }
            let words = e.split(separator: " ")
            if words.count == 3, words[0] == "MOVED" || words[0] == "ASK", let target = RedisLocation.Node(words[2]) {
                node = target
                asking = words[0] == "ASK"
                if !asking {
                    map.withLock { m in
                        if let k = m.nodes.firstIndex(of: target) { m.owner[slot] = Int16(k) } else {
                            m.nodes.append(target)
                            m.owner[slot] = Int16(m.nodes.count - 1)
                        }
                    }
                }
                continue
            }
            return replies  // another error reply: the caller's to read
        }
        throw .protocolError("slot \(slot) was redirected more than \(redirectLimit) times")
    }

    /// Many commands, each about its own key, sent as one pipeline per node (a scan of many
    /// buckets costs a round trip per node, not per key). A command that meets a redirect is
    /// sent again alone, through `call`.
    public func scatter(_ commands: [(key: [UInt8], command: [[UInt8]])]) -> [Result<RedisReply, RedisError>] {
        var results = [Result<RedisReply, RedisError>](repeating: .failure(.protocolError("not sent")), count: commands.count)
        var groups: [RedisLocation.Node: [Int]] = [:]
        let owners = map.withLock { m in commands.map { m.node(HashSlot.of($0.key)) } }
        for (k, node) in owners.enumerated() {
            if let node { groups[node, default: []].append(k) } else { results[k] = Result(catching: { () throws(RedisError) in try call(key: commands[k].key, commands[k].command) }) }
        }
        for (node, indices) in groups {
            do {
                let replies = try withConnection(node) { c throws(RedisError) in try c.pipeline(indices.map { commands[$0].command }) }
                for (k, reply) in zip(indices, replies) {
                    if let e = reply.errorText, e.hasPrefix("MOVED ") || e.hasPrefix("ASK ") {
                        results[k] = Result(catching: { () throws(RedisError) in try call(key: commands[k].key, commands[k].command) })
                    } else {
                        results[k] = .success(reply)
                    }
                }
            } catch {
                if isCluster { try? refreshSlots() }
                for k in indices { results[k] = .failure(error) }
            }
        }
        return results
    }

    /// The same command on every primary (script loads, scans, counts), each node's reply or failure.
    public func onEveryPrimary(_ command: [[UInt8]]) -> [(node: RedisLocation.Node, reply: Result<RedisReply, RedisError>)] {
        primaries.map { node in
            (node, Result(catching: { () throws(RedisError) in try withConnection(node) { c throws(RedisError) in try c.call(command) } }))
        }
    }

    /// Runs `body` on a pooled connection to `node` (made when none is idle); a connection
    /// that failed is closed instead of given back.
    public func withConnection<T>(_ node: RedisLocation.Node, _ body: (RedisConnection) throws(RedisError) -> T) throws(RedisError) -> T {
        let c = try take(node)
        let result: T
        do { result = try body(c) } catch {
            if !c.isBroken { give(c, to: node) }
            throw error
        }
        give(c, to: node)
        return result
    }

    private func take(_ node: RedisLocation.Node) throws(RedisError) -> RedisConnection {
        if let idle = pools.withLock({ $0[node]?.popLast() }) { return idle.connection }
        let c = try RedisConnection(host: node.host, port: node.port, timeoutMilliseconds: timeoutMilliseconds)
        if !isCluster, location.database != 0 {
            let reply = try c.call("SELECT", String(location.database))
            if let e = reply.errorText { throw .protocolError("SELECT \(location.database): \(e)") }
        }
        return c
    }

    private func give(_ c: RedisConnection, to node: RedisLocation.Node) {
        guard !c.isBroken else { return }
        let pooled = Pooled(c)
        pools.withLock { pools in
            if pools[node, default: []].count < poolLimit { pools[node, default: []].append(pooled) }
        }
    }
}
