import Foundation
import ModelFormat

/// Features the server derives from a row's `date`, so users send only what they observe.
enum CalendarFeatures {
    /// Day of year (1...366) of an ISO 8601 date `YYYY-MM-DD` (a time part after it is ignored).
    static func dayOfYear(_ text: String) -> Int? {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 10, utf8[4] == UInt8(ascii: "-"), utf8[7] == UInt8(ascii: "-"),
              utf8.count == 10 || utf8[10] == UInt8(ascii: "T") || utf8[10] == UInt8(ascii: " "),
              let year = Int(String(decoding: utf8[0..<4], as: UTF8.self)),
              let month = Int(String(decoding: utf8[5..<7], as: UTF8.self)),
              let day = Int(String(decoding: utf8[8..<10], as: UTF8.self)),
              (1...12).contains(month)
        else { return nil }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...lengths[month - 1]).contains(day) else { return nil }
        return lengths[..<(month - 1)].reduce(0, +) + day
    }

    static func value(_ derivation: ModelConfig.Derivation, dayOfYear: Int) -> Float {
        let angle = 2 * Double.pi * Double(dayOfYear - 1) / 365.25
        switch derivation {
        case .dayOfYearSin: return Float(sin(angle))
        case .dayOfYearCos: return Float(cos(angle))
        }
    }
}
