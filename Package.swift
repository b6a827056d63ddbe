// swift-tools-version: 6.0
import Foundation
import PackageDescription

/// The numeric core is compiled for the machine that builds it (AVX2/AVX-512 where present),
/// since the server is built from source where it runs (README). An image that must run on
/// other machines sets LSTM_SERVE_TARGET_CPU (the Dockerfile: haswell, the x86-64-v3 level: AVX2 and FMA, on Intel since 2013 and every AMD Zen).
let targetCPU = ProcessInfo.processInfo.environment["LSTM_SERVE_TARGET_CPU"] ?? "native"
let fastMath: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-target-cpu", targetCPU], .when(configuration: .release)),
    .unsafeFlags(["-target-cpu", targetCPU], .when(configuration: .debug)),
]

let package = Package(
    name: "lstm-serve",
    products: [
        .executable(name: "lstm-serve", targets: ["lstm-serve"]),
        .library(name: "RecurrentCore", targets: ["RecurrentCore"]),
        .library(name: "ModelFormat", targets: ["ModelFormat"]),
        .library(name: "ModelRuntime", targets: ["ModelRuntime"]),
        .library(name: "LSTMService", targets: ["LSTMService"]),
        .library(name: "HTTPServer", targets: ["HTTPServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CJansson",
            pkgConfig: "jansson",
            providers: [.apt(["libjansson-dev"])]
        ),
        .systemLibrary(
            name: "CMicroHTTPD",
            pkgConfig: "libmicrohttpd",
            providers: [.apt(["libmicrohttpd-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // A pthread lock that ThreadSanitizer can see (Synchronization.Mutex on Linux it cannot).
        .target(name: "Locking"),
        .target(name: "JSON", dependencies: ["CJansson", "Locking"]),
        .target(name: "HTTPServer", dependencies: ["CMicroHTTPD", "Locking"]),
        .target(name: "SQLite", dependencies: ["CSQLite"]),
        // Redis, single or Cluster: connections, the slot map, redirects.
        .target(name: "Redis", dependencies: ["CHiredis", "Locking"]),
        // SHA-256 and FNV-1a, for fingerprints, session keys and shard picks.
        .target(name: "Hashing"),
        .target(name: "RecurrentCore", swiftSettings: fastMath),
        .target(name: "ModelFormat", dependencies: ["JSON", "RecurrentCore", "Hashing"]),
        // Sessions behind a driver protocol: the promises, SessionError, the memory driver.
        // It knows no HTTP, JSON or C library, and no model: models come in through the
        // SessionModel protocol, which the runtime implements.
        .target(name: "SessionStore", dependencies: ["Locking", "Hashing"]),
        .target(name: "SessionStoreSQLite", dependencies: ["SessionStore", "SQLite", "Locking"]),
        // Sessions in Redis (one node or a Cluster), shared by replicas: one value per
        // session, each change a revision-checked script.
        .target(name: "SessionStoreRedis", dependencies: ["SessionStore", "Redis", "Locking"]),
        // The model as users see it: request decoding, the pipeline run, normalization,
        // residuals, intervals, calendar features, the loaded models. Every protocol and the
        // CLI share it; it knows nothing of HTTP.
        .target(name: "ModelRuntime", dependencies: ["RecurrentCore", "ModelFormat", "Locking", "SessionStore"]),
        // What the protocol front ends share: the error value, JSON answers, body parsing.
        .target(name: "FrontEnd", dependencies: ["HTTPServer", "JSON", "ModelRuntime", "SessionStore", "Locking"]),
        // One target per protocol front end: its wire format, handlers and error envelope.
        .target(name: "NativeAPI", dependencies: ["FrontEnd", "HTTPServer", "JSON", "ModelFormat", "ModelRuntime", "SessionStore", "RecurrentCore"]),
        .target(name: "OpenInference", dependencies: ["FrontEnd", "HTTPServer", "JSON", "ModelRuntime", "SessionStore", "RecurrentCore"]),
        // Composition: configuration → runtime, store, front ends, server; metrics and logs.
        .target(name: "LSTMService", dependencies: ["JSON", "RecurrentCore", "ModelFormat", "ModelRuntime", "HTTPServer", "Locking",
                                                    "Hashing", "SessionStore", "SessionStoreSQLite", "SessionStoreRedis", "Redis", "FrontEnd", "NativeAPI", "OpenInference"],
                resources: [.embedInCode("openapi.json")]),
        .executableTarget(
            name: "lstm-serve",
            dependencies: [
                "LSTMService", "ModelRuntime", "ModelFormat", "RecurrentCore", "JSON", "FrontEnd", "NativeAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Benchmarks of the core (bench/run.sh); small, and never needed to serve.
        .executableTarget(
            name: "lstm-bench",
            dependencies: ["RecurrentCore", "ModelFormat", "ModelRuntime", "LSTMService", "HTTPServer", "JSON"],
            path: "bench/Sources/lstm-bench",
            swiftSettings: fastMath
        ),
        .target(name: "TestSupport", dependencies: ["JSON", "Locking"], path: "Tests/TestSupport"),
        .testTarget(name: "JSONTests", dependencies: ["JSON", "Locking"]),
        .testTarget(name: "SQLiteTests", dependencies: ["SQLite"]),
        .testTarget(name: "RedisTests", dependencies: ["Redis", "TestSupport"]),
        .testTarget(name: "RecurrentCoreTests", dependencies: ["RecurrentCore", "TestSupport"]),
        .testTarget(
            name: "ModelFormatTests",
            dependencies: ["ModelFormat", "RecurrentCore", "JSON", "TestSupport"]
        ),
        .testTarget(
            name: "SessionStoreTests",
            dependencies: ["SessionStore", "SessionStoreSQLite", "SessionStoreRedis", "Redis", "ModelRuntime", "ModelFormat", "RecurrentCore", "Locking", "TestSupport"]
        ),
        .testTarget(name: "NativeAPITests", dependencies: ["NativeAPI", "ModelRuntime", "ModelFormat", "RecurrentCore", "JSON", "TestSupport"]),
        .testTarget(name: "ModelRuntimeTests", dependencies: ["ModelRuntime", "ModelFormat", "RecurrentCore", "SessionStore", "Locking", "TestSupport"]),
        .testTarget(
            name: "LSTMServiceTests",
            dependencies: ["LSTMService", "ModelRuntime", "ModelFormat", "RecurrentCore", "JSON", "Locking", "SessionStore", "HTTPServer", "FrontEnd", "TestSupport"]
        ),
    ]
)
