import ModelFormat
import Testing

/// One malformed file per failure, written byte by byte (safetensors' own test style).
@Suite struct SafeTensorsTests {
    /// 8-byte little-endian length + header text + data.
    static func file(_ header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        let n = length ?? UInt64(h.count)
        return (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } + h + data
    }

    static let floatOne: [UInt8] = [0x00, 0x00, 0x80, 0x3F]  // 1.0f
    static let floatTwo: [UInt8] = [0x00, 0x00, 0x00, 0x40]  // 2.0f

    func error(_ bytes: [UInt8]) -> SafeTensorsError? {
        do { _ = try SafeTensors(bytes: bytes); return nil } catch { return error }
    }

    @Test func aValidFileReadsBackItsValues() throws {
        let st = try SafeTensors(bytes: Self.file(
            #"{"__metadata__":{"cell":"lstm"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[1],"data_offsets":[8,10]},"c":{"dtype":"BF16","shape":[1],"data_offsets":[10,12]}}"#,
            data: Self.floatOne + Self.floatTwo + [0x00, 0x3C] + [0x40, 0xC0]))
        #expect(try st.floats("a") == [1, 2])
        #expect(try st.floats("b") == [1])        // F16 0x3C00
        #expect(try st.floats("c") == [-3])       // BF16 0xC040
        #expect(st.metadata == ["cell": "lstm"])
        #expect(st.names == ["a", "b", "c"])
    }

    @Test func aFileShorterThanTheLengthFieldIsRejected() {
        #expect(error([1, 2, 3]) == .fileTooSmall(size: 3))
    }

    @Test func aHugeHeaderLengthIsRejectedBeforeReading() {
        #expect(error(Self.file("{}", length: 1 << 40)) == .headerTooLarge(length: 1 << 40, limit: 100_000_000))
    }

    @Test func aHeaderLengthPastTheEndOfTheFileIsRejected() {
        #expect(error(Self.file("{}", length: 50)) == .headerIncomplete(length: 50, available: 2))
    }

    @Test func aHeaderThatIsNotAnObjectIsRejected() {
        #expect(error(Self.file("[1,2]")) == .headerNotAnObject)
    }

    @Test func invalidHeaderJSONIsRejected() {
        guard case .invalidHeader = error(Self.file("{\"a\": ")) else { Issue.record("expected invalidHeader"); return }
    }

    @Test func duplicateTensorNamesAreRejected() {
        let e = error(Self.file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: Self.floatOne))
        guard case let .invalidHeader(message) = e else { Issue.record("expected invalidHeader, got \(String(describing: e))"); return }
        #expect(message.contains("duplicate"))
    }

    @Test func anUnknownDTypeIsRejected() {
        #expect(error(Self.file(#"{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, data: Self.floatOne))
            == .unknownDType(name: "a", dtype: "F33"))
    }

    @Test func aMissingShapeIsRejected() {
        #expect(error(Self.file(#"{"a":{"dtype":"F32","data_offsets":[0,4]}}"#, data: Self.floatOne))
            == .invalidTensorEntry(name: "a", reason: "missing or non-array 'shape'"))
    }

    @Test func aShapeWhoseSizeOverflowsIsRejected() {
        #expect(error(Self.file(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, data: Self.floatOne))
            == .shapeOverflow(name: "a"))
    }

    @Test func aShapeThatLiesAboutTheByteCountIsRejected() {
        #expect(error(Self.file(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: Self.floatOne + Self.floatTwo))
            == .sizeMismatch(name: "a", expected: 12, actual: 8))
    }

    @Test func offsetsPastTheDataAreRejected() {
        #expect(error(Self.file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: Self.floatOne))
            == .invalidOffset(name: "a"))
    }

    @Test func reversedOffsetsAreRejected() {
        #expect(error(Self.file(#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#, data: Self.floatOne))
            == .invalidOffset(name: "a"))
    }

    @Test func overlappingTensorsAreRejected() {
        #expect(error(Self.file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: Self.floatOne + Self.floatTwo))
            == .notContiguous(name: "b"))
    }

    @Test func aHoleBetweenTensorsIsRejected() {
        #expect(error(Self.file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: Self.floatOne + Self.floatTwo))
            == .notContiguous(name: "a"))
    }

    @Test func aTruncatedFileIsRejected() {
        // The header promises 8 bytes of data; the file ends after 4.
        #expect(error(Self.file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: Self.floatOne))
            == .invalidOffset(name: "a"))
    }

    @Test func bytesAfterTheLastTensorAreRejected() {
        #expect(error(Self.file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: Self.floatOne + Self.floatTwo))
            == .trailingBytes(count: 4))
    }

    @Test func metadataMustMapStringsToStrings() {
        #expect(error(Self.file(#"{"__metadata__":{"a":1}}"#))
            == .invalidMetadata("value of 'a' is a number, expected a string"))
    }

    @Test func integerTensorsAreNotReadAsWeights() throws {
        let st = try SafeTensors(bytes: Self.file(#"{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}"#, data: Self.floatOne))
        #expect(throws: SafeTensorsError.notFloatingPoint(name: "a", dtype: "I32")) { try st.floatTensor("a") }
    }

    @Test func half16ConversionIsExactIncludingSubnormalsAndInfinity() throws {
        // 0x0001 smallest subnormal 2^-24, 0x7C00 +inf, 0xFBFF -65504
        let st = try SafeTensors(bytes: Self.file(#"{"a":{"dtype":"F16","shape":[3],"data_offsets":[0,6]}}"#, data: [0x01, 0x00, 0x00, 0x7C, 0xFF, 0xFB]))
        let v = try st.floats("a")
        #expect(v[0] == Float(sign: .plus, exponent: -24, significand: 1))
        #expect(v[1] == .infinity)
        #expect(v[2] == -65504)
    }
}
