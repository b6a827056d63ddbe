import Foundation
import FrontEnd
import JSON
import Locking
import SessionStore

public enum LogLevel: String, Sendable, Comparable {
    case debug, info, warning, error
    var rank: Int {
        switch self {
        case .debug: return 0
        case .info: return 1
        case .warning: return 2
        case .error: return 3
        }
    }
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rank < b.rank }
}

/// Lines to standard error, one write each, at or above the configured level: text
/// (`time level message key=value…`) or one JSON object per line.
public struct Log: Sendable {
    public let level: LogLevel
    public let json: Bool
    private static let lock = Locked(())

    public init(level: LogLevel, json: Bool = false) {
        self.level = level
        self.json = json
    }

    public func callAsFunction(_ level: LogLevel, _ message: @autoclosure () -> String,
                               _ fields: @autoclosure () -> KeyValuePairs<String, String> = [:]) {
        guard level >= self.level else { return }
        write(level, message(), fields())
    }

    /// A line written at any configured level: what start-up says once (where it listens,
    /// the models it loaded), which scripts and operators read whatever the level.
    public func announce(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) {
        write(.info, message, fields)
    }

    /// A reason the process cannot go on, as the last line before it exits: the CLI's
    /// `lstm-serve: …` in text, an error record in JSON.
    public func fatal(_ message: String) {
        if json {
            write(.error, message, [:])
        } else {
            Self.lock.withLock { _ in _ = "lstm-serve: \(Self.escaped(message))\n".withCString { Glibc.write(2, $0, strlen($0)) } }
        }
    }

    private func write(_ level: LogLevel, _ message: String, _ fields: KeyValuePairs<String, String>) {
        let line: String
        if json {
            var out = "{\"time\":\"\(Self.timestamp())\",\"level\":\"\(level.rawValue)\",\"message\":\(Self.quoted(message))"
            for (k, v) in fields { out += ",\(Self.quoted(k)):\(Self.quoted(v))" }
            line = out + "}\n"
        } else {
            var out = "\(Self.timestamp()) \(level.rawValue) \(Self.escaped(message))"
            for (k, v) in fields { out += " \(k)=\(Self.escaped(v))" }
            line = out + "\n"
        }
        Self.lock.withLock { _ in _ = line.withCString { Glibc.write(2, $0, strlen($0)) } }
    }

    /// A JSON string literal.
    static func quoted(_ text: String) -> String {
        let body = ControlCharacters.replacing(text) { scalar in
            switch scalar {
            case "\"": return "\\\""
            case "\\": return "\\\\"
            case "\n": return "\\n"
            case "\r": return "\\r"
            case "\t": return "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: return "\\u00" + ControlCharacters.hex2(scalar.value)
            default: return nil
            }
        }
        return "\"" + body + "\""
    }

    /// `text` with control characters (CR, LF, ESC, NUL, ...) and backslashes written as
    /// escapes, so that what a client sent or a file holds cannot forge a log line, move the
    /// cursor of a terminal, or split an error message.
    public static func escaped(_ text: some StringProtocol) -> String { ControlCharacters.escaped(text) }

    static func timestamp() -> String {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        var tmv = tm()
        var seconds = t.tv_sec
        gmtime_r(&seconds, &tmv)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tmv.tm_year + 1900, tmv.tm_mon + 1, tmv.tm_mday,
                      tmv.tm_hour, tmv.tm_min, tmv.tm_sec, t.tv_nsec / 1_000_000)
    }
}
