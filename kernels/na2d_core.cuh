// tsjnet-sdk: fused 2-D neighborhood attention (forward), shared host/device core.
//
// Semantics: exactly tsjnet_sdk/ops/_na_reference.py (NATTEN's rule).
//   q, k, v: [B, H, W, heads, D] (D contiguous, heads stride D; B/H/W strides are arguments),
//   out: [B, H, W, heads, D] contiguous, same dtype as q.
//   Dilation d splits each axis into d interleaved groups; in a group of length L >= k the window of
//   position p starts at clamp(p - k/2, 0, L - k) (shifted inward at borders); in a group shorter than
//   k the window is the whole group (the surplus slots are masked).  Optional relative position bias
//   rpb [heads, 2k-1, 2k-1] is added at (key - query) / d + k - 1 per axis.  Logit scale = the op's
//   `scale` argument (default D^-0.5, passed as its fp32 bit pattern because TensorRT AOT plugins
//   take int32 scalars only), softmax and all accumulation in float32, output rounded to the I/O dtype.
//
// Design (one CUDA thread block = NW independent warps; no __syncthreads anywhere):
//   * A warp owns a tile of QPT query rows x 32 query columns of one (batch, head, dilation group).
//     Lane l owns column x0 + l and keeps its QPT queries (pre-scaled by scale * log2 e), their
//     running max / sum and D-wide accumulators in registers (fp32).
//   * K/V reuse through shared memory: the warp walks the union of its queries' window rows
//     (<= k + QPT - 1 rows).  For each row it stages that row's (32 + k - 1) keys of K and V into a
//     warp-private shared-memory buffer with 16-byte vectorised, coalesced global loads
//     (ld.global.nc.v4), then every lane reads its k keys from shared memory with 16-byte loads.  One
//     staged key serves up to k lanes x QPT queries; the row stride is padded to an odd number of
//     16-byte chunks so the 16-byte reads of 8 consecutive lanes hit 8 distinct bank groups.
//   * Softmax is online per window row (flash-attention style): k logits in registers, one max /
//     rescale per row, exp2 on log2-scaled logits.  The relative position bias is read from the
//     (tiny, L1-resident) rpb table.
//   * fp16 I/O: K/V stay fp16 in shared memory (half the bytes, half the bank traffic) and are
//     converted to fp32 as they are read; q, logits, softmax and accumulators are fp32 throughout.
//   * Static shared memory <= 48 KiB per block (no opt-in attribute needed, also under TensorRT);
//     NW (1..4 warps) is the largest count that fits.
//
// Everything below that is not a CUDA kernel is written as __host__ __device__ code.  The host harness
// (na2d_host_harness.cpp) runs the very same functions lane by lane on the CPU, including the
// shared-memory staging, so the index math, masking, bias indexing, online softmax and fp16 handling
// are checked against the PyTorch reference without a GPU.  The only device-only pieces are the
// 16-byte load/store instructions, the fp16 conversion instructions and __syncwarp.
//
// The file compiles with nvcc, with NVRTC (no system headers needed) and with a plain C++17 compiler.

#ifndef TSJNET_NA2D_CORE_CUH
#define TSJNET_NA2D_CORE_CUH

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define NA_HD __host__ __device__ __forceinline__
#else
#define NA_HD inline
#include <math.h>
#include <stdint.h>
#include <string.h>
#endif

#if defined(__CUDA_ARCH__)
#define NA_ON_DEVICE 1
#else
#define NA_ON_DEVICE 0
#endif

namespace na2d {

typedef unsigned short half_bits;  // fp16 storage (IEEE binary16 bit pattern)
typedef unsigned int u32;
typedef long long i64;

constexpr int kWarp = 32;                       // query columns per warp tile (= lanes)
constexpr int kMaxStaticSmem = 48 * 1024;       // static shared memory budget per block
constexpr float kLog2e = 1.4426950408889634f;

struct alignas(16) Vec16 {                       // 16 bytes: 4 fp32 or 8 fp16
    u32 x, y, z, w;
};

// ------------------------------------------------------------------------------------------------
// Scalar helpers (bit casts, fp16 <-> fp32)
// ------------------------------------------------------------------------------------------------
NA_HD float bits_to_float(u32 u) {
#if NA_ON_DEVICE
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, 4);
    return f;
#endif
}

NA_HD u32 float_to_bits(float f) {
#if NA_ON_DEVICE
    return __float_as_uint(f);
#else
    u32 u;
    memcpy(&u, &f, 4);
    return u;
#endif
}

NA_HD float neg_inf() { return bits_to_float(0xff800000u); }

NA_HD float half_to_float(half_bits h) {
#if NA_ON_DEVICE
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
#else
    const u32 sign = (u32)(h & 0x8000u) << 16;
    u32 exp = (h >> 10) & 0x1fu;
    u32 man = h & 0x3ffu;
    if (exp == 0x1fu) return bits_to_float(sign | 0x7f800000u | (man << 13));  // inf / nan
    if (exp == 0) {
        if (man == 0) return bits_to_float(sign);                                // +-0
        int e = -1;                                                              // subnormal: normalise
        do { man <<= 1; ++e; } while ((man & 0x400u) == 0);
        man &= 0x3ffu;
        return bits_to_float(sign | ((u32)(112 - e) << 23) | (man << 13));
    }
    return bits_to_float(sign | ((exp + 112u) << 23) | (man << 13));
#endif
}

NA_HD half_bits float_to_half(float f) {  // round to nearest even (what cvt.rn.f16.f32 does)
#if NA_ON_DEVICE
    half_bits h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
#else
    const u32 x = float_to_bits(f);
    const u32 sign = (x >> 16) & 0x8000u;
    const u32 ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (half_bits)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
    if (ax >= 0x477ff000u) return (half_bits)(sign | 0x7c00u);                   // rounds to >= 65520: inf
    if (ax < 0x38800000u) {                                                       // below 2^-14: subnormal or 0
        if (ax < 0x33000000u) return (half_bits)sign;                             // < 2^-25: rounds to 0
        const u32 e = ax >> 23;
        const u32 m = (ax & 0x7fffffu) | 0x800000u;
        const u32 shift = 126u - e;                                               // 14..24
        u32 r = m >> shift;
        const u32 rem = m & ((1u << shift) - 1u);
        const u32 half_ulp = 1u << (shift - 1u);
        if (rem > half_ulp || (rem == half_ulp && (r & 1u))) ++r;
        return (half_bits)(sign | r);
    }
    u32 r = ((ax >> 13) - (112u << 10));
    const u32 rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
    return (half_bits)(sign | r);
#endif
}

NA_HD void unpack_half2(u32 w, float& lo, float& hi) {
#if NA_ON_DEVICE
    asm("{\n\t.reg .f16 l, h;\n\tmov.b32 {l, h}, %2;\n\tcvt.f32.f16 %0, l;\n\tcvt.f32.f16 %1, h;\n\t}"
        : "=f"(lo), "=f"(hi) : "r"(w));
#else
    lo = half_to_float((half_bits)(w & 0xffffu));
    hi = half_to_float((half_bits)(w >> 16));
#endif
}

NA_HD u32 pack_half2(float lo, float hi) {
    return (u32)float_to_half(lo) | ((u32)float_to_half(hi) << 16);
}

// ------------------------------------------------------------------------------------------------
// Element-type traits: how many elements a 16-byte vector holds, unpack to / pack from fp32.
// ------------------------------------------------------------------------------------------------
template <typename T> struct Elem;

template <> struct Elem<float> {
    static constexpr int kPerVec = 4;
    static constexpr int kBytes = 4;
    NA_HD static void unpack(const Vec16& v, float* f) {
        f[0] = bits_to_float(v.x); f[1] = bits_to_float(v.y);
        f[2] = bits_to_float(v.z); f[3] = bits_to_float(v.w);
    }
    NA_HD static Vec16 pack(const float* f) {
        Vec16 v;
        v.x = float_to_bits(f[0]); v.y = float_to_bits(f[1]);
        v.z = float_to_bits(f[2]); v.w = float_to_bits(f[3]);
        return v;
    }
};

template <> struct Elem<half_bits> {
    static constexpr int kPerVec = 8;
    static constexpr int kBytes = 2;
    NA_HD static void unpack(const Vec16& v, float* f) {
        unpack_half2(v.x, f[0], f[1]); unpack_half2(v.y, f[2], f[3]);
        unpack_half2(v.z, f[4], f[5]); unpack_half2(v.w, f[6], f[7]);
    }
    NA_HD static Vec16 pack(const float* f) {
        Vec16 v;
        v.x = pack_half2(f[0], f[1]); v.y = pack_half2(f[2], f[3]);
        v.z = pack_half2(f[4], f[5]); v.w = pack_half2(f[6], f[7]);
        return v;
    }
};

// 16-byte global memory access (read-only path for inputs).
NA_HD Vec16 load_global16(const void* p) {
    Vec16 v;
#if NA_ON_DEVICE
    asm("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
#else
    memcpy(&v, p, 16);
#endif
    return v;
}

NA_HD void store_global16(void* p, const Vec16& v) {
#if NA_ON_DEVICE
    asm volatile("st.global.v4.u32 [%0], {%1, %2, %3, %4};"
                 :: "l"(p), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w) : "memory");
#else
    memcpy(p, &v, 16);
#endif
}

NA_HD float load_bias(const void* rpb, i64 idx, int rpb_half) {
    return rpb_half ? half_to_float(((const half_bits*)rpb)[idx]) : ((const float*)rpb)[idx];
}

// ------------------------------------------------------------------------------------------------
// Compile-time configuration of one kernel instance.
// ------------------------------------------------------------------------------------------------
template <typename T, int KS, int D> struct Config {
    static_assert(KS >= 1 && KS % 2 == 1, "kernel size must be odd");
    static_assert(D % 8 == 0 && D >= 8 && D <= 64, "head_dim must be 8, 16, 32, 40, 48, 56 or 64");
    static constexpr int kEpv = Elem<T>::kPerVec;                      // elements per 16-byte vector
    static constexpr int kVecs = D * Elem<T>::kBytes / 16;             // 16-byte vectors per key
    static constexpr int kStride = (kVecs % 2 == 1) ? kVecs : kVecs + 1;  // odd: conflict-free
    static constexpr int kQpt = (D <= 32) ? 2 : 1;                     // query rows per warp
    static constexpr int kMaxKeys = kWarp + KS - 1;                    // staged keys per row
    static constexpr int kWarpVecs = 2 * kMaxKeys * kStride;           // K + V buffer, in Vec16
    static constexpr int kWarpBytes = kWarpVecs * 16;
    static constexpr int kFit = kMaxStaticSmem / kWarpBytes;
    static constexpr int kWarps = kFit >= 4 ? 4 : (kFit >= 1 ? kFit : 1);
    static constexpr int kThreads = kWarps * kWarp;
    static constexpr int kRowsPerBlock = kWarps * kQpt;
    static constexpr int kSmemBytes = kWarps * kWarpBytes;
    static_assert(kSmemBytes <= kMaxStaticSmem, "shared memory budget exceeded");
};

// Kernel arguments (element strides; q, k and v share one stride set, out is contiguous).
struct Args {
    const void* q;
    const void* k;
    const void* v;
    const void* rpb;  // nullptr: no relative position bias
    void* out;
    int B, H, W, heads, dil;
    i64 sB, sH, sW;    // strides of q/k/v in elements; head stride is D, channel stride 1
    int rpb_half;      // rpb dtype: 0 fp32, 1 fp16
    float scale;       // logit scale (the op's `scale`, normally D^-0.5)
};

// ------------------------------------------------------------------------------------------------
// Window rule along one axis (group coordinates): first key of the window of position p in a
// group of length L, and the number of valid slots (k, or L for a group shorter than k).
// ------------------------------------------------------------------------------------------------
NA_HD int window_start(int p, int L, int ks) {
    int s = p - ks / 2;
    const int hi = L - ks > 0 ? L - ks : 0;
    s = s < 0 ? 0 : s;
    return s > hi ? hi : s;
}

NA_HD int window_len(int L, int ks) { return L < ks ? L : ks; }

NA_HD int group_len(int n, int phase, int dil) { return (n - phase + dil - 1) / dil; }

// Grid: x = tiles_x * tiles_y, y = dil * dil (dilation groups), z = B * heads.
NA_HD int tiles_x(int W, int dil) { return ((W + dil - 1) / dil + kWarp - 1) / kWarp; }
NA_HD int tiles_y(int H, int dil, int rows_per_block) {
    return ((H + dil - 1) / dil + rows_per_block - 1) / rows_per_block;
}

// What one warp works on.
struct WarpTask {
    bool valid;
    int b, h, py, px;     // batch, head, dilation phase
    int Hg, Wg;           // group extents
    int gy0, x0;          // first query row / column (group coordinates)
    int ny, nx;           // valid window slots per axis
    int c_lo, nk;         // staged key columns: [c_lo, c_lo + nk)
    int r_lo, r_hi;       // key rows walked (inclusive)
};

template <typename T, int KS, int D>
NA_HD WarpTask make_warp_task(const Args& a, int bx, int by, int bz, int warp) {
    typedef Config<T, KS, D> C;
    WarpTask t;
    const int tx = tiles_x(a.W, a.dil);
    const int tile_x = bx % tx, tile_y = bx / tx;
    t.py = by / a.dil;
    t.px = by % a.dil;
    t.b = bz / a.heads;
    t.h = bz % a.heads;
    t.Hg = group_len(a.H, t.py, a.dil);
    t.Wg = group_len(a.W, t.px, a.dil);
    t.gy0 = tile_y * C::kRowsPerBlock + warp * C::kQpt;
    t.x0 = tile_x * kWarp;
    t.valid = t.b < a.B && t.gy0 < t.Hg && t.x0 < t.Wg;
    if (!t.valid) return t;
    t.ny = window_len(t.Hg, KS);
    t.nx = window_len(t.Wg, KS);
    const int x_last = (t.x0 + kWarp - 1 < t.Wg - 1) ? t.x0 + kWarp - 1 : t.Wg - 1;
    t.c_lo = window_start(t.x0, t.Wg, KS);
    t.nk = window_start(x_last, t.Wg, KS) + t.nx - t.c_lo;
    const int y_last = (t.gy0 + C::kQpt - 1 < t.Hg - 1) ? t.gy0 + C::kQpt - 1 : t.Hg - 1;
    t.r_lo = window_start(t.gy0, t.Hg, KS);
    t.r_hi = window_start(y_last, t.Hg, KS) + t.ny - 1;
    return t;
}

// Element offset of pixel (group row gy, group column gx) of head h in q/k/v.
NA_HD i64 pixel_offset(const Args& a, const WarpTask& t, int gy, int gx, int D) {
    return (i64)t.b * a.sB + (i64)(gy * a.dil + t.py) * a.sH + (i64)(gx * a.dil + t.px) * a.sW +
           (i64)t.h * D;
}

// Cooperative staging of key row r (K and V) into the warp's shared buffers.  Lane `lane` copies
// vectors lane, lane + 32, ...; consecutive lanes read consecutive 16-byte pieces of a key.
template <typename T, int KS, int D>
NA_HD void stage_row(const Args& a, const WarpTask& t, int r, int lane, Vec16* sk, Vec16* sv) {
    typedef Config<T, KS, D> C;
    const int total = t.nk * C::kVecs;
    const i64 row_off = pixel_offset(a, t, r, t.c_lo, D);
    const i64 key_step = (i64)a.dil * a.sW;
    const char* kb = (const char*)a.k;
    const char* vb = (const char*)a.v;
#if NA_ON_DEVICE
#pragma unroll 4
#endif
    for (int i = lane; i < total; i += kWarp) {
        const int j = i / C::kVecs;
        const int part = i - j * C::kVecs;
        const i64 byte_off = (row_off + j * key_step) * Elem<T>::kBytes + part * 16;
        const Vec16 kv = load_global16(kb + byte_off);
        const Vec16 vv = load_global16(vb + byte_off);
        sk[j * C::kStride + part] = kv;
        sv[j * C::kStride + part] = vv;
    }
}

// Per-lane state: QPT queries of column gx.
template <int D, int QPT> struct LaneState {
    float q[QPT][D];    // query * scale * log2(e)
    float acc[QPT][D];  // un-normalised output
    float m[QPT];       // running max of log2-domain logits
    float l[QPT];       // running sum of exp2(logit - m)
    int gy[QPT];        // query rows (clamped into the group)
    bool row_ok[QPT];   // query row exists (not a tile overhang)
    int gx;             // query column (clamped)
    bool col_ok;        // query column exists
    int sx;             // first key column of the window
    int sy[QPT];        // first key row of each query's window
};

template <typename T, int KS, int D>
NA_HD void lane_setup(const Args& a, const WarpTask& t, int lane,
                      LaneState<D, Config<T, KS, D>::kQpt>& s) {
    typedef Config<T, KS, D> C;
    const int gx = t.x0 + lane;
    s.col_ok = gx < t.Wg;
    s.gx = s.col_ok ? gx : t.Wg - 1;
    s.sx = window_start(s.gx, t.Wg, KS);
    // logits are kept in the log2 domain: q * scale * log2(e), so that exp2 gives the softmax terms
    const float scale = a.scale * kLog2e;
    const char* qb = (const char*)a.q;
#if NA_ON_DEVICE
#pragma unroll
#endif
    for (int i = 0; i < C::kQpt; ++i) {
        const int gy = t.gy0 + i;
        s.row_ok[i] = gy < t.Hg;
        s.gy[i] = s.row_ok[i] ? gy : t.Hg - 1;
        s.sy[i] = window_start(s.gy[i], t.Hg, KS);
        s.m[i] = neg_inf();
        s.l[i] = 0.f;
        const char* qp = qb + pixel_offset(a, t, s.gy[i], s.gx, D) * Elem<T>::kBytes;
#if NA_ON_DEVICE
#pragma unroll
#endif
        for (int part = 0; part < C::kVecs; ++part) {
            float f[C::kEpv];
            Elem<T>::unpack(load_global16(qp + part * 16), f);
#if NA_ON_DEVICE
#pragma unroll
#endif
            for (int e = 0; e < C::kEpv; ++e) {
                s.q[i][part * C::kEpv + e] = f[e] * scale;
                s.acc[i][part * C::kEpv + e] = 0.f;
            }
        }
    }
}

// One key row r for all of this lane's queries: k logits each, online-softmax update, P.V.
template <typename T, int KS, int D>
NA_HD void lane_row(const Args& a, const WarpTask& t, int r, const Vec16* sk, const Vec16* sv,
                    LaneState<D, Config<T, KS, D>::kQpt>& s) {
    typedef Config<T, KS, D> C;
    constexpr int QPT = C::kQpt;
    bool active[QPT];
    bool any = false;
#if NA_ON_DEVICE
#pragma unroll
#endif
    for (int i = 0; i < QPT; ++i) {
        active[i] = (unsigned)(r - s.sy[i]) < (unsigned)t.ny;  // same for every lane of the warp
        any = any || active[i];
    }
    if (!any) return;

    const int xoff = s.sx - t.c_lo;  // this lane's first staged key
    float p[QPT][KS];

    // ---- logits: q . k for the k keys of this window row --------------------------------------
#if NA_ON_DEVICE
#pragma unroll
#endif
    for (int c = 0; c < KS; ++c) {
        if (c < t.nx) {
            const Vec16* kp = sk + (xoff + c) * C::kStride;
            float dot[QPT];
#if NA_ON_DEVICE
#pragma unroll
#endif
            for (int i = 0; i < QPT; ++i) dot[i] = 0.f;
#if NA_ON_DEVICE
#pragma unroll
#endif
            for (int part = 0; part < C::kVecs; ++part) {
                float kf[C::kEpv];
                Elem<T>::unpack(kp[part], kf);
#if NA_ON_DEVICE
#pragma unroll
#endif
                for (int i = 0; i < QPT; ++i) {
#if NA_ON_DEVICE
#pragma unroll
#endif
                    for (int e = 0; e < C::kEpv; ++e) dot[i] = fmaf(s.q[i][part * C::kEpv + e], kf[e], dot[i]);
                }
            }
#if NA_ON_DEVICE
#pragma unroll
#endif
            for (int i = 0; i < QPT; ++i) p[i][c] = dot[i];
        } else {
#if NA_ON_DEVICE
#pragma unroll
#endif
            for (int i = 0; i < QPT; ++i) p[i][c] = neg_inf();
        }
    }

    // ---- relative position bias, online softmax update -----------------------------------------
#if NA_ON_DEVICE
#pragma unroll
#endif
    for (int i = 0; i < QPT; ++i) {
        if (!active[i]) continue;  // this row is outside query i's window: p[i] is never read below
        if (a.rpb != nullptr) {
            const int span = 2 * KS - 1;
            const i64 base = ((i64)t.h * span + (r - s.gy[i] + KS - 1)) * span + (s.sx - s.gx + KS - 1);
#if NA_ON_DEVICE
#pragma unroll
#endif
            for (int c = 0; c < KS; ++c)
                if (c < t.nx) p[i][c] = fmaf(load_bias(a.rpb, base + c, a.rpb_half), kLog2e, p[i][c]);
        }
        float row_max = p[i][0];
#if NA_ON_DEVICE
#pragma unroll
#endif
        for (int c = 1; c < KS; ++c) row_max = fmaxf(row_max, p[i][c]);
        const float m_new = fmaxf(s.m[i], row_max);
        // Safe softmax: while every logit seen so far is -inf (e.g. a -inf bias row), m_new is -inf and
        // exp2(-inf - -inf) would be NaN.  Subtracting 0 instead gives alpha = 0 and p = 0 for that row.
        const float m_sub = m_new == neg_inf() ? 0.f : m_new;
        const float alpha = exp2f(s.m[i] - m_sub);  // 0 on the first finite row (m = -inf)
        float row_sum = 0.f;
#if NA_ON_DEVICE
#pragma unroll
#endif
        for (int c = 0; c < KS; ++c) {
            p[i][c] = exp2f(p[i][c] - m_sub);  // masked slots: exp2(-inf) = 0
            row_sum += p[i][c];
        }
        s.l[i] = fmaf(s.l[i], alpha, row_sum);
        s.m[i] = m_new;
#if NA_ON_DEVICE
#pragma unroll
#endif
        for (int d = 0; d < D; ++d) s.acc[i][d] *= alpha;
    }

    // ---- weighted sum of the values ----------------------------------------------------------
#if NA_ON_DEVICE
#pragma unroll
#endif
    for (int c = 0; c < KS; ++c) {
        if (c < t.nx) {
            const Vec16* vp = sv + (xoff + c) * C::kStride;
#if NA_ON_DEVICE
#pragma unroll
#endif
            for (int part = 0; part < C::kVecs; ++part) {
                float vf[C::kEpv];
                Elem<T>::unpack(vp[part], vf);
#if NA_ON_DEVICE
#pragma unroll
#endif
                for (int i = 0; i < QPT; ++i) {
                    // An inactive query must not even add 0 * v: 0 * inf = NaN would leak a value from
                    // outside its window.  active[] is warp-uniform, so this branch does not diverge.
                    if (!active[i]) continue;
#if NA_ON_DEVICE
#pragma unroll
#endif
                    for (int e = 0; e < C::kEpv; ++e)
                        s.acc[i][part * C::kEpv + e] = fmaf(p[i][c], vf[e], s.acc[i][part * C::kEpv + e]);
                }
            }
        }
    }
}

template <typename T, int KS, int D>
NA_HD void lane_finish(const Args& a, const WarpTask& t, LaneState<D, Config<T, KS, D>::kQpt>& s) {
    typedef Config<T, KS, D> C;
    if (!s.col_ok) return;
    char* ob = (char*)a.out;
#if NA_ON_DEVICE
#pragma unroll
#endif
    for (int i = 0; i < C::kQpt; ++i) {
        if (!s.row_ok[i]) continue;
        const float inv = 1.f / s.l[i];
        const int y = s.gy[i] * a.dil + t.py;
        const int x = s.gx * a.dil + t.px;
        const i64 off = ((((i64)t.b * a.H + y) * a.W + x) * a.heads + t.h) * D;
        char* op = ob + off * Elem<T>::kBytes;
#if NA_ON_DEVICE
#pragma unroll
#endif
        for (int part = 0; part < C::kVecs; ++part) {
            float f[C::kEpv];
#if NA_ON_DEVICE
#pragma unroll
#endif
            for (int e = 0; e < C::kEpv; ++e) f[e] = s.acc[i][part * C::kEpv + e] * inv;
            store_global16(op + part * 16, Elem<T>::pack(f));
        }
    }
}

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
// ------------------------------------------------------------------------------------------------
// The device body: one warp = one WarpTask.  Kept out of line so that the with-/without-rpb entry
// points share one compiled body.
// ------------------------------------------------------------------------------------------------
template <typename T, int KS, int D>
__device__ __noinline__ void na2d_forward_body(const Args a) {
    typedef Config<T, KS, D> C;
    __shared__ Vec16 smem[C::kWarps * C::kWarpVecs];
    const int warp = threadIdx.x / kWarp;
    const int lane = threadIdx.x % kWarp;
    const WarpTask t = make_warp_task<T, KS, D>(a, blockIdx.x, blockIdx.y, blockIdx.z, warp);
    if (!t.valid) return;  // whole warp leaves together
    Vec16* sk = smem + warp * C::kWarpVecs;
    Vec16* sv = sk + C::kMaxKeys * C::kStride;
    LaneState<D, C::kQpt> s;
    lane_setup<T, KS, D>(a, t, lane, s);
    for (int r = t.r_lo; r <= t.r_hi; ++r) {
        __syncwarp();  // previous row fully consumed
        stage_row<T, KS, D>(a, t, r, lane, sk, sv);
        __syncwarp();  // row visible to the whole warp
        lane_row<T, KS, D>(a, t, r, sk, sv, s);
    }
    lane_finish<T, KS, D>(a, t, s);
}
#endif

}  // namespace na2d

#endif  // TSJNET_NA2D_CORE_CUH
