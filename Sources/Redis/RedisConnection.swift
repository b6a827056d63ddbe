internal import CHiredis

#if canImport(Glibc)
import Glibc
#endif

/// One connection to one Redis node, used by one thread at a time. Calls block, bounded by
/// the timeout given at connect (for connecting, and for each read and write after). After a
/// `RedisError.io` the connection is closed and must be dropped. The C type is `redisContext`.
public final class RedisConnection {
    public let host: String
    public let port: Int
    private let context: UnsafeMutablePointer<redisContext>
    /// Set once a call failed: hiredis leaves a broken context unusable.
    public private(set) var isBroken = false

    /// The corresponding C functions are `redisConnectWithTimeout` and `redisSetTimeout`.
    public init(host: String, port: Int, timeoutMilliseconds: Int) throws(RedisError) {
        (self.host, self.port) = (host, port)
        let tv = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
        guard let c = redisConnectWithTimeout(host, Int32(port), tv) else {
            throw .connect("\(host):\(port): out of memory")
        }
        if c.pointee.err != 0 {
            let message = String(cString: CHiredis_errstr(c))
            redisFree(c)
            throw .connect("\(host):\(port): \(message)")
        }
        redisSetTimeout(c, tv)
        redisEnableKeepAlive(c)
        context = c
    }

    deinit { redisFree(context) }

    /// `host:port`, as cluster redirects name nodes.
    public var address: String { "\(host):\(port)" }

    /// Sends one command and reads its reply. The C function is `redisCommandArgv`.
    public func call(_ arguments: [[UInt8]]) throws(RedisError) -> RedisReply {
        try pipeline([arguments])[0]
    }

    public func call(_ arguments: String...) throws(RedisError) -> RedisReply {
        try call(arguments.map { Array($0.utf8) })
    }

    /// Sends every command, then reads their replies in order: one round trip. The C
    /// functions are `redisAppendCommandArgv` and `redisGetReply`.
    public func pipeline(_ commands: [[[UInt8]]]) throws(RedisError) -> [RedisReply] {
        guard !isBroken else { throw .io("\(address): the connection was closed by an earlier failure") }
        for command in commands {
            let rc = Self.withArgv(command) { argc, argv, lengths in redisAppendCommandArgv(context, argc, argv, lengths) }
            guard rc == REDIS_OK else { throw fail() }
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw fail() }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            replies.append(Self.copy(reply))
            freeReplyObject(raw)
        }
        return replies
    }

    private func fail() -> RedisError {
        isBroken = true
        let message = context.pointee.err != 0 ? String(cString: CHiredis_errstr(context)) : "no reply"
        return .io("\(address): \(message)")
    }

    private static func withArgv<T>(_ arguments: [[UInt8]], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> T) -> T {
        // one buffer for every argument's bytes, so that their pointers stay put for the call
        var bytes: [UInt8] = []
        bytes.reserveCapacity(arguments.reduce(0) { $0 + $1.count } + 1)
        var lengths: [Int] = []
        lengths.reserveCapacity(arguments.count)
        for a in arguments {
            bytes.append(contentsOf: a)
            lengths.append(a.count)
        }
        bytes.append(0)  // an argument of no bytes still needs a valid pointer
        return bytes.withUnsafeBufferPointer { buffer in
            let argv = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(1, arguments.count))
            defer { argv.deallocate() }
            var offset = 0
            for (k, n) in lengths.enumerated() {
                argv[k] = UnsafeRawPointer(buffer.baseAddress! + offset).assumingMemoryBound(to: CChar.self)
                offset += n
            }
            return lengths.withUnsafeBufferPointer { body(Int32(arguments.count), argv, $0.baseAddress!) }
        }
    }

    private static func copy(_ r: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let reply = r.pointee
        switch reply.type {
        case REDIS_REPLY_STRING:
            return .bytes(reply.len == 0 ? [] : Array(UnsafeRawBufferPointer(start: reply.str, count: Int(reply.len))))
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: UnsafeRawBufferPointer(start: reply.str, count: Int(reply.len)), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: UnsafeRawBufferPointer(start: reply.str, count: Int(reply.len)), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int(reply.integer))
        case REDIS_REPLY_ARRAY:
            return .array((0..<Int(reply.elements)).map { copy(reply.element[$0]!) })
        default:
            return .null
        }
    }
}
