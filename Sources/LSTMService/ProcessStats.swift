import Foundation
import FrontEnd

/// This server's version, in `--version`, `/metrics` (`lstm_serve_build_info`) and `GET /v2`.
/// The process's own resource use from /proc, for the standard Prometheus `process_*` metrics.
struct ProcessStats {
    var residentBytes = 0
    var virtualBytes = 0
    var openFDs = 0
    var cpuSeconds = 0.0
    var startTime = 0.0

    static func read() -> ProcessStats {
        var s = ProcessStats()
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
            let f = statm.split(separator: " ")
            if f.count > 1 { s.virtualBytes = (Int(f[0]) ?? 0) * page; s.residentBytes = (Int(f[1]) ?? 0) * page }
        }
        s.openFDs = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).count
        // /proc/self/stat: the command may hold spaces, so fields are counted after its ')'
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") {
            let f = stat[stat.index(after: close)...].split(separator: " ")
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            // fields 14 and 15 (utime, stime) and 22 (starttime) are 12, 13 and 20 after ')'
            if f.count > 20 {
                s.cpuSeconds = ((Double(f[11]) ?? 0) + (Double(f[12]) ?? 0)) / ticks
                s.startTime = bootTime() + (Double(f[19]) ?? 0) / ticks
            }
        }
        return s
    }

    private static func bootTime() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6)) ?? 0
        }
        return 0
    }
}
