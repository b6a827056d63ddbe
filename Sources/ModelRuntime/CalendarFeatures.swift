import Foundation
import ModelFormat

/// Features the server derives from a row's `date`, so users send only what they observe.
public enum CalendarFeatures {
    /// Day of year (1...366) of an ISO 8601 date `YYYY-MM-DD` (a time part after it is ignored).
    public static func dayOfYear(_ text: String) -> Int? {
        var text = text
        return text.withUTF8 { dayOfYear(utf8: $0) }
    }

    /// The same, of the date's UTF-8 bytes.
    public static func dayOfYear(utf8 u: UnsafeBufferPointer<UInt8>) -> Int? {
        // digits at [lo, hi) as a number, without building Strings
        func number(_ lo: Int, _ hi: Int) -> Int? {
            var v = 0
            for k in lo..<hi {
                let d = Int(u[k]) - 48
                guard (0...9).contains(d) else { return nil }
                v = v * 10 + d
            }
            return v
        }
        guard u.count >= 10, u[4] == UInt8(ascii: "-"), u[7] == UInt8(ascii: "-"),
              u.count == 10 || u[10] == UInt8(ascii: "T") || u[10] == UInt8(ascii: " "),
              let year = number(0, 4), let month = number(5, 7), let day = number(8, 10),
              (1...12).contains(month)
        else { return nil }
        return dayOfYear(year: year, month: month, day: day)
    }

    static func dayOfYear(year: Int, month: Int, day: Int) -> Int? {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let extra = leap && month > 2 ? 1 : 0
        let length = month == 2 ? (leap ? 29 : 28) : monthLengths[month - 1]
        guard (1...length).contains(day) else { return nil }
        return daysBeforeMonth[month - 1] + extra + day
    }

    private static let monthLengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    /// In a common year.
    private static let daysBeforeMonth = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334]

    public static func value(_ derivation: ModelConfig.Derivation, dayOfYear: Int) -> Float {
        let angle = 2 * Double.pi * Double(dayOfYear - 1) / 365.25
        switch derivation {
        case .dayOfYearSin: return Float(sin(angle))
        case .dayOfYearCos: return Float(cos(angle))
        }
    }
}
