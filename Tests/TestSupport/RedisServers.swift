import Foundation
import Locking

/// Real Redis servers for tests (`redis-server` and `redis-cli` from Debian's packages, which
/// `scripts/setup.sh --test` installs): one node, or a cluster of primaries with a replica
/// each, on free loopback ports, in a directory of their own. Stopped (kill -9) on `stop` or
/// when released.
public final class RedisServers: @unchecked Sendable {
    public let directory: String
    /// The nodes' ports, primaries first when a cluster was made.
    public private(set) var ports: [Int] = []
    private var processes: [Int: Process] = [:]

    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }

    /// One Redis, not in cluster mode.
    public static func single() throws -> RedisServers {
        let s = try RedisServers()
        try s.launch(cluster: false)
        return s
    }

    /// A Redis Cluster of `primaries` primaries and one replica each, covering every slot.
    public static func cluster(primaries: Int = 3) throws -> RedisServers {
        let s = try RedisServers()
        for _ in 0..<(primaries * 2) { try s.launch(cluster: true) }
        let nodes = s.ports.map { "127.0.0.1:\($0)" }
        let create = try run("/usr/bin/redis-cli", ["--cluster", "create"] + nodes + ["--cluster-replicas", "1", "--cluster-yes"])
        guard create.status == 0 else { throw Missing(description: "redis-cli --cluster create failed: \(create.output)") }
        try s.waitUntilClusterIsOK()
        return s
    }

    private init() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-server") else {
            throw Missing(description: "redis-server is not installed: run scripts/setup.sh --test (it installs redis-server and redis-tools)")
        }
        directory = NSTemporaryDirectory() + "lstm-redis-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit { stop() }

    /// Starts one more node on a free port (and, in cluster mode, a free bus port above it).
    @discardableResult
    public func launch(cluster: Bool) throws -> Int {
        for _ in 0..<20 {
            let port = Self.freePort(busToo: cluster)
            var args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                        "--dir", directory, "--dbfilename", "dump-\(port).rdb", "--logfile", "\(directory)/redis-\(port).log"]
            if cluster {
                args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes-\(port).conf", "--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0"]
            }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
            p.arguments = args
            // its output goes to its log file: a server holding the test runner's output
            // open would keep `swift test` waiting after the tests end
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            Self.reapAtExit(p.processIdentifier)
            if Self.waitForPort(port, process: p) {
                processes[port] = p
                ports.append(port)
                return port
            }
            p.terminate()
        }
        throw Missing(description: "redis-server did not start on a free port; see \(directory)")
    }

    /// Kills a node at once (as a crash would).
    public func kill(_ port: Int) {
        guard let p = processes.removeValue(forKey: port) else { return }
        Foundation.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    public func stop() {
        for port in Array(processes.keys) { kill(port) }
    }

    /// `redis-cli -p PORT args…`, its output.
    public func cli(_ port: Int, _ args: String...) throws -> String {
        try Self.run("/usr/bin/redis-cli", ["-p", String(port)] + args).output
    }

    /// Waits until every node sees the cluster whole and every replica has synced.
    public func waitUntilClusterIsOK(seconds: Double = 30) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let ok = try processes.keys.allSatisfy { port in
                guard try cli(port, "CLUSTER", "INFO").contains("cluster_state:ok") else { return false }
                let replication = try cli(port, "INFO", "replication")
                return replication.contains("role:master") || replication.contains("master_link_status:up")
            }
            if ok { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw Missing(description: "the Redis Cluster did not reach cluster_state:ok in \(seconds) s")
    }

    /// Servers a suite shares (held by a static) are never released: they are killed when
    /// the test process exits.
    private static let launched = Locked([pid_t]())
    private static let reaper: Void = { atexit { for pid in RedisServers.launched.withLock({ $0 }) { Foundation.kill(pid, SIGKILL) } } }()

    static func reapAtExit(_ pid: pid_t) {
        _ = reaper
        launched.withLock { $0.append(pid) }
    }

    static func run(_ path: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func waitForPort(_ port: Int, process: Process) -> Bool {
        for _ in 0..<100 {
            if !process.isRunning { return false }
            if let fd = try? HTTPClient(port: port).connectSocket() {
                close(fd)
                return true
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    /// A port nothing listens on (and, for a cluster node, its bus port 10000 above too).
    static func freePort(busToo: Bool) -> Int {
        while true {
            let port = Int.random(in: 20000...50000)
            if isFree(port), !busToo || isFree(port + 10000) { return port }
        }
    }

    static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        return withLoopback(port) { bind(fd, $0, $1) } == 0
    }
}
