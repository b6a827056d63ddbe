// The hot loops. Everything the recurrent step spends its time in lives here: the
// matrix-vector product over transposed weights and the vectorized activations.
// Vectors are 16 lanes; partial vectors at the end of a row go through the same math.

typealias Vec = SIMD16<Float>
typealias IVec = SIMD16<Int32>

@inline(__always) func load(_ p: UnsafePointer<Float>) -> Vec {
    UnsafeRawPointer(p).loadUnaligned(as: Vec.self)
}

@inline(__always) func store(_ v: Vec, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec.self)
}

/// The first `count` lanes from `p`, the rest zero.
@inline(__always) func load(_ p: UnsafePointer<Float>, _ count: Int) -> Vec {
    if count >= 16 { return load(p) }
    var v = Vec()
    for k in 0..<count { v[k] = p[k] }
    return v
}

@inline(__always) func store(_ v: Vec, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    if count >= 16 { store(v, p); return }
    for k in 0..<count { p[k] = v[k] }
}

/// out[0..<n] += Σ_j x[j] · w[j·ldw ..< j·ldw + n], summing j in order for every column
/// (the narrow last panel of a `PackedMatrix`).
@inline(__always)
func accumulateProduct(
    _ out: UnsafeMutablePointer<Float>, _ n: Int,
    _ x: UnsafePointer<Float>, _ rows: Int,
    _ w: UnsafePointer<Float>, _ ldw: Int
) {
    // Panels narrower than 128 (full panels go through accumulatePanel128).
    var c = 0
    while c + 32 <= n {
        var a0 = load(out + c), a1 = load(out + c + 16)
        var p = w + c
        for j in 0..<rows {
            let xj = Vec(repeating: x[j])
            a0 = a0.addingProduct(xj, load(p)); a1 = a1.addingProduct(xj, load(p + 16))
            p += ldw
        }
        store(a0, out + c); store(a1, out + c + 16)
        c += 32
    }
    while c < n {
        let m = n - c
        var a0 = load(out + c, m)
        var p = w + c
        for j in 0..<rows {
            a0 = a0.addingProduct(Vec(repeating: x[j]), load(p, m))
            p += ldw
        }
        store(a0, out + c, m)
        c += 16
    }
}

/// out[0..<128] += Σ_j x[j] · wx[128·j ..< 128·j + 128] + Σ_j h[j] · wh[...]: one packed panel
/// of one or two matrices, read linearly, its 128 sums held in eight vector registers.
@inline(__always)
func accumulatePanel128(
    _ out: UnsafeMutablePointer<Float>,
    _ x: UnsafePointer<Float>, _ xRows: Int, _ wx: UnsafePointer<Float>,
    _ h: UnsafePointer<Float>?, _ hRows: Int, _ wh: UnsafePointer<Float>?
) {
    var a0 = load(out), a1 = load(out + 16), a2 = load(out + 32), a3 = load(out + 48)
    var a4 = load(out + 64), a5 = load(out + 80), a6 = load(out + 96), a7 = load(out + 112)
    // x rows, then h rows: the same order as two separate products
    var v = x, rows = xRows, p = wx
    for pass in 0..<2 {
        if pass == 1 {
            guard let h, let wh else { break }
            (v, rows, p) = (h, hRows, wh)
        }
        for j in 0..<rows {
            let xj = Vec(repeating: v[j])
            a0 = a0.addingProduct(xj, load(p)); a1 = a1.addingProduct(xj, load(p + 16))
            a2 = a2.addingProduct(xj, load(p + 32)); a3 = a3.addingProduct(xj, load(p + 48))
            a4 = a4.addingProduct(xj, load(p + 64)); a5 = a5.addingProduct(xj, load(p + 80))
            a6 = a6.addingProduct(xj, load(p + 96)); a7 = a7.addingProduct(xj, load(p + 112))
            p += 128
        }
    }
    store(a0, out); store(a1, out + 16); store(a2, out + 32); store(a3, out + 48)
    store(a4, out + 64); store(a5, out + 80); store(a6, out + 96); store(a7, out + 112)
}

/// Two samples through one packed panel: out0 += W x0 + V h0 and out1 += W x1 + V h1, each
/// weight vector loaded once for both. Every sum keeps the order of the one-sample kernel, so
/// a batch gives the same bits as its samples alone.
@inline(__always)
func accumulatePanel128x2(
    _ out0: UnsafeMutablePointer<Float>, _ out1: UnsafeMutablePointer<Float>,
    _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>, _ xRows: Int, _ wx: UnsafePointer<Float>,
    _ h0: UnsafePointer<Float>, _ h1: UnsafePointer<Float>, _ hRows: Int, _ wh: UnsafePointer<Float>
) {
    var a0 = load(out0), a1 = load(out0 + 16), a2 = load(out0 + 32), a3 = load(out0 + 48)
    var a4 = load(out0 + 64), a5 = load(out0 + 80), a6 = load(out0 + 96), a7 = load(out0 + 112)
    var b0 = load(out1), b1 = load(out1 + 16), b2 = load(out1 + 32), b3 = load(out1 + 48)
    var b4 = load(out1 + 64), b5 = load(out1 + 80), b6 = load(out1 + 96), b7 = load(out1 + 112)
    var (u, v, rows, p) = (x0, x1, xRows, wx)
    for pass in 0..<2 {
        if pass == 1 { (u, v, rows, p) = (h0, h1, hRows, wh) }
        for j in 0..<rows {
            let s = Vec(repeating: u[j]), t = Vec(repeating: v[j])
            var w = load(p); a0 = a0.addingProduct(s, w); b0 = b0.addingProduct(t, w)
            w = load(p + 16); a1 = a1.addingProduct(s, w); b1 = b1.addingProduct(t, w)
            w = load(p + 32); a2 = a2.addingProduct(s, w); b2 = b2.addingProduct(t, w)
            w = load(p + 48); a3 = a3.addingProduct(s, w); b3 = b3.addingProduct(t, w)
            w = load(p + 64); a4 = a4.addingProduct(s, w); b4 = b4.addingProduct(t, w)
            w = load(p + 80); a5 = a5.addingProduct(s, w); b5 = b5.addingProduct(t, w)
            w = load(p + 96); a6 = a6.addingProduct(s, w); b6 = b6.addingProduct(t, w)
            w = load(p + 112); a7 = a7.addingProduct(s, w); b7 = b7.addingProduct(t, w)
            p += 128
        }
    }
    store(a0, out0); store(a1, out0 + 16); store(a2, out0 + 32); store(a3, out0 + 48)
    store(a4, out0 + 64); store(a5, out0 + 80); store(a6, out0 + 96); store(a7, out0 + 112)
    store(b0, out1); store(b1, out1 + 16); store(b2, out1 + 32); store(b3, out1 + 48)
    store(b4, out1 + 64); store(b5, out1 + 80); store(b6, out1 + 96); store(b7, out1 + 112)
}

// MARK: - Activations (Cephes single-precision polynomials, about 1 ulp)

/// e^x, lanewise. Inputs are clamped to [-87, 88], beyond which Float under- or overflows.
@_transparent func exp(_ input: Vec) -> Vec {
    // (`clamped` is not inlined for SIMD16 and cost more than the matrix product)
    var x0 = input.replacing(with: 88, where: input .> 88)
    x0.replace(with: -87, where: x0 .< -87)
    let fx = (x0 * 1.44269504088896341).rounded(.toNearestOrEven)
    var x = x0 - fx * 0.693359375
    x = x - fx * -2.12194440e-4
    let z = x * x
    var y: Vec = Vec(repeating: 1.9875691500e-4)
    y = y * x + 1.3981999507e-3
    y = y * x + 8.3334519073e-3
    y = y * x + 4.1665795894e-2
    y = y * x + 1.6666665459e-1
    y = y * x + 5.0000001201e-1
    y = y * z + x + 1
    // 2^fx: fx + 1.5·2^23 holds fx in its low mantissa bits.
    let shifted = unsafeBitCast(fx + 12582912.0, to: IVec.self) &- IVec(repeating: 0x4B40_0000 - 127)
    return y * unsafeBitCast(shifted &<< 23, to: Vec.self)
}

/// The logistic function 1 / (1 + e^-x).
@_transparent func sigmoid(_ x: Vec) -> Vec {
    1 / (1 + exp(-x))
}

/// tanh: an odd polynomial below |x| = 0.625, 1 - 2/(e^2|x| + 1) above; sign restored.
@_transparent func tanh(_ x: Vec) -> Vec {
    let bits = unsafeBitCast(x, to: IVec.self)
    let ax = unsafeBitCast(bits & 0x7FFF_FFFF, to: Vec.self)
    let large = 1 - 2 / (exp(ax + ax) + 1)
    let z = x * x
    var p: Vec = Vec(repeating: -5.70498872745e-3)
    p = p * z + 2.06390887954e-2
    p = p * z - 5.37397155531e-2
    p = p * z + 1.33314422036e-1
    p = p * z - 3.33332819422e-1
    p = p * z * ax + ax
    let magnitude = large.replacing(with: p, where: ax .< 0.625)
    let sign = bits & IVec(repeating: Int32(bitPattern: 0x8000_0000))
    return unsafeBitCast(unsafeBitCast(magnitude, to: IVec.self) | sign, to: Vec.self)
}

@inline(__always) func relu(_ x: Vec) -> Vec {
    x.replacing(with: 0, where: x .< 0)
}

/// Scalar e^x through the same polynomial (for softmax).
func exp(_ x: Float) -> Float { exp(Vec(repeating: x))[0] }

// MARK: - Pointwise cell updates

/// The two activations of a cell: `act` (LSTM g and c', GRU n) and `rec` (the gates). The
/// kernels below are generic over it, so tanh/sigmoid compile to fused code with no switch.
protocol CellActivations {
    func act(_ x: Vec) -> Vec
    func rec(_ x: Vec) -> Vec
}

/// tanh and sigmoid, the frameworks' defaults.
struct DefaultActivations: CellActivations {
    @inline(__always) func act(_ x: Vec) -> Vec { tanh(x) }
    @inline(__always) func rec(_ x: Vec) -> Vec { sigmoid(x) }
}

/// Any elementwise pair, chosen at load.
struct ChosenActivations: CellActivations {
    let activation: Activation, recurrent: Activation
    @inline(__always) func act(_ x: Vec) -> Vec { activation.apply(x) }
    @inline(__always) func rec(_ x: Vec) -> Vec { recurrent.apply(x) }
}

/// LSTM, per unit k: c' = σ(f)·c + σ(i)·tanh(g); h' = σ(o)·tanh(c') (σ, tanh: `fns`).
/// gates: (4H) pre-activations i, f, g, o; c: (H) in/out; h: (H) out.
@inline(__always)
func lstmPointwise<A: CellActivations>(_ gates: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, _ h: UnsafeMutablePointer<Float>,
                                       _ hidden: Int, _ fns: A) {
    var k = 0
    while k < hidden {
        let m = hidden - k
        let i = fns.rec(load(gates + k, m))
        let f = fns.rec(load(gates + hidden + k, m))
        let g = fns.act(load(gates + 2 * hidden + k, m))
        let o = fns.rec(load(gates + 3 * hidden + k, m))
        let cNew = f * load(c + k, m) + i * g
        store(cNew, c + k, m)
        store(o * fns.act(cNew), h + k, m)
        k += 16
    }
}

/// GRU (reset after), per unit: r = σ(xr + hr); z = σ(xz + hz); n = tanh(xn + r·hn);
/// h' = (1 - z)·n + z·h. gx, gh: (3H) input and recurrent pre-activations r, z, n; h: (H) in/out.
@inline(__always)
func gruPointwise<A: CellActivations>(_ gx: UnsafePointer<Float>, _ gh: UnsafePointer<Float>, _ h: UnsafeMutablePointer<Float>,
                                      _ hidden: Int, _ fns: A) {
    var k = 0
    while k < hidden {
        let m = hidden - k
        let r = fns.rec(load(gx + k, m) + load(gh + k, m))
        let z = fns.rec(load(gx + hidden + k, m) + load(gh + hidden + k, m))
        let n = fns.act(load(gx + 2 * hidden + k, m) + r * load(gh + 2 * hidden + k, m))
        store((1 - z) * n + z * load(h + k, m), h + k, m)
        k += 16
    }
}
