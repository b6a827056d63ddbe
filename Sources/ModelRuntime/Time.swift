import Foundation

/// ISO 8601 in UTC for a Unix time in seconds.
public func iso8601(_ seconds: Double) -> String {
    var tmv = tm()
    var s = time_t(seconds.rounded(.down))
    gmtime_r(&s, &tmv)
    return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", tmv.tm_year + 1900, tmv.tm_mon + 1, tmv.tm_mday, tmv.tm_hour, tmv.tm_min, tmv.tm_sec)
}
