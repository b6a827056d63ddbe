import Foundation

/// A minimal HTTP/1.1 client over a raw socket, for tests against a live server on 127.0.0.1.
public struct HTTPClient: Sendable {
    public struct Response: Sendable {
        public let status: Int
        public let headers: [String: String]
        public let body: [UInt8]
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public let port: Int
    public init(port: Int) { self.port = port }

    /// A connected socket to the server; the caller closes it.
    public func connectSocket() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        let ok = withLoopback(port) { connect(fd, $0, $1) }
        guard ok == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
        return fd
    }

    /// Sends `bytes` as they are and reads until the server closes or `timeout` seconds pass
    /// with nothing read (then `timedOut`).
    public func raw(_ bytes: [UInt8], timeout: Double = 2) throws -> (data: [UInt8], timedOut: Bool) {
        let fd = try connectSocket()
        defer { close(fd) }
        try send(fd, bytes)
        return Self.readAll(fd, timeout: timeout)
    }

    public func raw(_ text: String, timeout: Double = 2) throws -> (data: [UInt8], timedOut: Bool) {
        try raw(Array(text.utf8), timeout: timeout)
    }

    /// Reads until EOF, an error, or `timeout` seconds of silence.
    public static func readAll(_ fd: Int32, timeout: Double) -> (data: [UInt8], timedOut: Bool) {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, Int32(timeout * 1000)) == 0 { return (data, true) }
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { return (data, false) }
            data += buffer[0..<n]
        }
    }

    public func request(_ method: String, _ path: String, body: [UInt8] = [], headers: [String: String] = [:]) throws -> Response {
        let fd = try connectSocket()
        defer { close(fd) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        var h = headers
        if !body.isEmpty || method == "POST" || method == "PUT" {
            h["Content-Length"] = h["Content-Length"] ?? "\(body.count)"
            if h["Content-Type"] == nil, !body.isEmpty { h["Content-Type"] = "application/json" }
        }
        for (k, v) in h.sorted(by: { $0.key < $1.key }) { head += "\(k): \(v)\r\n" }
        head += "\r\n"
        try send(fd, Array(head.utf8) + body)
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            data += buffer[0..<n]
        }
        return try Self.parse(data)
    }

    public func json(_ method: String, _ path: String, _ text: String) throws -> Response {
        try request(method, path, body: Array(text.utf8))
    }

    public func send(_ fd: Int32, _ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }  // the server may close early (e.g. 413); read what it said
            sent += n
        }
    }

    public static func parse(_ data: [UInt8]) throws -> Response {
        guard let end = (0..<max(0, data.count - 3)).first(where: { data[$0] == 13 && data[$0 + 1] == 10 && data[$0 + 2] == 13 && data[$0 + 3] == 10 }) else {
            throw POSIXError(.EBADMSG)
        }
        let lines = String(decoding: data[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ")[1]) ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        var body = Array(data[(end + 4)...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = dechunk(body) }
        return Response(status: status, headers: headers, body: body)
    }

    static func dechunk(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [], i = 0
        while i < data.count {
            var j = i
            while j + 1 < data.count, !(data[j] == 13 && data[j + 1] == 10) { j += 1 }
            let size = Int(String(decoding: data[i..<j], as: UTF8.self).split(separator: ";")[0], radix: 16) ?? 0
            if size == 0 { break }
            out += data[(j + 2)..<min(data.count, j + 2 + size)]
            i = j + 2 + size + 2
        }
        return out
    }
}

/// Calls `body` with 127.0.0.1:`port` as a socket address and its length.
public func withLoopback<T>(_ port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = UInt16(port).bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}
