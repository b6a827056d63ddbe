// swift-tools-version: 6.0
// libFuzzer targets, built apart from the server (libFuzzer brings its own main):
//   swift build -c release --package-path fuzz -Xswiftc -sanitize=fuzzer,address
// Tests/system/fuzz-targets.sh builds and runs them.
import PackageDescription

let package = Package(
    name: "lstm-serve-fuzz",
    dependencies: [.package(name: "lstm-serve", path: "..")],
    targets: [
        .target(name: "FuzzDriver"),
        .executableTarget(
            name: "fuzz-safetensors",
            dependencies: ["FuzzDriver", .product(name: "ModelFormat", package: "lstm-serve"), .product(name: "RecurrentCore", package: "lstm-serve")]
        ),
        .executableTarget(name: "fuzz-config", dependencies: ["FuzzDriver", .product(name: "LSTMService", package: "lstm-serve")]),
        .executableTarget(
            name: "fuzz-request",
            dependencies: [
                "FuzzDriver", .product(name: "LSTMService", package: "lstm-serve"), .product(name: "ModelFormat", package: "lstm-serve"),
                .product(name: "HTTPServer", package: "lstm-serve"), .product(name: "ModelRuntime", package: "lstm-serve"),
            ]
        ),
    ]
)
