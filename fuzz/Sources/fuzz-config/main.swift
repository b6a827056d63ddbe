import FuzzDriver
import LSTMService

/// The server's config file: any bytes may be refused with one line; none may crash.
func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var c = Configuration()
    do {
        try c.load(json: Array(UnsafeBufferPointer(start: data, count: size)), source: "fuzz.json")
        // what loaded reads back as what it is
        var again = Configuration()
        for (key, _, _) in Configuration.keys where key != "models" { try again.set(key, c.text(key), source: "again") }
        again.models = c.models
        precondition(again == c, "a loaded configuration does not read back")
    } catch {
        precondition(!error.description.contains("\n"), "a config error is more than one line")
    }
    return 0
}

runFuzzer { data, size in fuzzConfig(data, size) }
