// tsjnet-sdk: CPU emulation of the CUDA neighborhood-attention kernel (verification only).
//
// Runs the __host__ __device__ functions of na2d_core.cuh exactly as the kernel does: the same grid,
// the same warp tiles, lane by lane, with the same warp-private shared-memory staging of every key
// row (the staging buffer is poisoned with NaN before each row, so a lane that read a key that was
// not staged would produce NaN).  Built with a plain C++ compiler as a shared library and called from
// Python through ctypes (tests/test_kernels_cpu_harness.py); not used in production.
// na2d_host_forward uses the kernel's own launch geometry; na2d_host_launch takes the grid and block
// from the caller, so that the geometry the Python side computes (kernels/spec.py) is what is tested.

#include <vector>

#include "na2d_core.cuh"

namespace {

using namespace na2d;

// Emulates one launch with the given grid and block (the caller's launch geometry is what is being
// checked, so it is not recomputed here).  Returns false when the block size is not the kernel's.
template <typename T, int KS, int D>
bool run_host(const Args& a, int grid_x, int grid_y, int grid_z, int block_x) {
    typedef Config<T, KS, D> C;
    if (block_x != C::kThreads) return false;
    std::vector<Vec16> sk(C::kMaxKeys * C::kStride), sv(C::kMaxKeys * C::kStride);
    std::vector<LaneState<D, C::kQpt>> lanes(kWarp);
    Vec16 poison;
    poison.x = poison.y = poison.z = poison.w = 0x7fc07fc0u;  // NaN as fp32 and as fp16 pairs
    for (int bz = 0; bz < grid_z; ++bz)
        for (int by = 0; by < grid_y; ++by)
            for (int bx = 0; bx < grid_x; ++bx)
                for (int warp = 0; warp < C::kWarps; ++warp) {
                    const WarpTask t = make_warp_task<T, KS, D>(a, bx, by, bz, warp);
                    if (!t.valid) continue;
                    for (int lane = 0; lane < kWarp; ++lane) lane_setup<T, KS, D>(a, t, lane, lanes[lane]);
                    for (int r = t.r_lo; r <= t.r_hi; ++r) {
                        for (auto& x : sk) x = poison;
                        for (auto& x : sv) x = poison;
                        for (int lane = 0; lane < kWarp; ++lane) stage_row<T, KS, D>(a, t, r, lane, sk.data(), sv.data());
                        for (int lane = 0; lane < kWarp; ++lane) lane_row<T, KS, D>(a, t, r, sk.data(), sv.data(), lanes[lane]);
                    }
                    for (int lane = 0; lane < kWarp; ++lane) lane_finish<T, KS, D>(a, t, lanes[lane]);
                }
    return true;
}

// The kernel's own launch geometry (what na2d_kernels.cu documents).
template <typename T, int KS, int D>
bool run_host_default(const Args& a) {
    typedef Config<T, KS, D> C;
    const int grid_x = tiles_x(a.W, a.dil) * tiles_y(a.H, a.dil, C::kRowsPerBlock);
    return run_host<T, KS, D>(a, grid_x, a.dil * a.dil, a.B * a.heads, C::kThreads);
}

template <typename T, int KS, int D>
void config_of(int* out) {
    typedef Config<T, KS, D> C;
    out[0] = C::kWarps;
    out[1] = C::kQpt;
    out[2] = C::kSmemBytes;
    out[3] = C::kThreads;
    out[4] = C::kRowsPerBlock;
}

// Instantiation lists.  Emulating every (dtype, k, head_dim) makes g++ take ~20 s, so a test may
// pass shorter lists, e.g. -D'NA_HOST_KS_LIST(X)=X(3) X(7)'; the config query (compile-time constants
// only, cheap) always covers everything the core accepts.
#ifndef NA_HOST_KS_LIST
#define NA_HOST_KS_LIST(X) X(1) X(3) X(5) X(7) X(9) X(11) X(13)
#endif
#ifndef NA_HOST_D_LIST
#define NA_HOST_D_LIST(X) X(8) X(16) X(24) X(32) X(40) X(48) X(56) X(64)
#endif
#define NA_ALL_KS_LIST(X) X(1) X(3) X(5) X(7) X(9) X(11) X(13)
#define NA_ALL_D_LIST(X) X(8) X(16) X(24) X(32) X(40) X(48) X(56) X(64)

struct Launch {
    int grid_x, grid_y, grid_z, block_x;  // grid_x < 0: use the kernel's own geometry
};

template <typename T, int KS>
int forward_d(int d, const Args& a, const Launch& l) {
    switch (d) {
#define NA_CASE(DD)                                                                        \
    case DD:                                                                               \
        if (l.grid_x < 0) return run_host_default<T, KS, DD>(a) ? 0 : -2;                 \
        return run_host<T, KS, DD>(a, l.grid_x, l.grid_y, l.grid_z, l.block_x) ? 0 : -2;
        NA_HOST_D_LIST(NA_CASE)
#undef NA_CASE
        default: return -1;
    }
}

template <typename T>
int forward_ks(int ks, int d, const Args& a, const Launch& l) {
    switch (ks) {
#define NA_CASE(KK) case KK: return forward_d<T, KK>(d, a, l);
        NA_HOST_KS_LIST(NA_CASE)
#undef NA_CASE
        default: return -1;
    }
}

template <typename T, int KS>
bool config_d(int d, int* cfg) {
    switch (d) {
#define NA_CASE(DD) case DD: config_of<T, KS, DD>(cfg); return true;
        NA_ALL_D_LIST(NA_CASE)
#undef NA_CASE
        default: return false;
    }
}

template <typename T>
bool config_ks(int ks, int d, int* cfg) {
    switch (ks) {
#define NA_CASE(KK) case KK: return config_d<T, KK>(d, cfg);
        NA_ALL_KS_LIST(NA_CASE)
#undef NA_CASE
        default: return false;
    }
}

int forward(int dtype, int ks, int d, const Args& a, const Launch& l) {
    if (dtype == 0) return forward_ks<float>(ks, d, a, l);
    if (dtype == 1) return forward_ks<half_bits>(ks, d, a, l);
    return -1;
}

Args make_args(const void* q, const void* k, const void* v, const void* rpb, int rpb_half, void* out, int B,
               int H, int W, int heads, int dil, float scale, long long sB, long long sH, long long sW) {
    Args a;
    a.q = q; a.k = k; a.v = v; a.rpb = rpb; a.out = out;
    a.B = B; a.H = H; a.W = W; a.heads = heads; a.dil = dil;
    a.sB = sB; a.sH = sH; a.sW = sW; a.rpb_half = rpb_half; a.scale = scale;
    return a;
}

}  // namespace

extern "C" {

// dtype: 0 fp32, 1 fp16.  Returns 0 on success, -1 for a (dtype, ks, head_dim) not compiled in.
int na2d_host_forward(int dtype, int ks, int head_dim, const void* q, const void* k, const void* v,
                      const void* rpb, int rpb_half, void* out, int B, int H, int W, int heads, int dil,
                      float scale, long long sB, long long sH, long long sW) {
    const Args a = make_args(q, k, v, rpb, rpb_half, out, B, H, W, heads, dil, scale, sB, sH, sW);
    return forward(dtype, ks, head_dim, a, Launch{-1, 0, 0, 0});
}

// Same, with an explicit launch geometry (grid, threads per block) as a caller would pass to
// cuLaunchKernel / TensorRT.  Returns -2 when block_x is not the kernel's block size.
int na2d_host_launch(int dtype, int ks, int head_dim, int grid_x, int grid_y, int grid_z, int block_x,
                     const void* q, const void* k, const void* v, const void* rpb, int rpb_half, void* out,
                     int B, int H, int W, int heads, int dil, float scale, long long sB, long long sH,
                     long long sW) {
    const Args a = make_args(q, k, v, rpb, rpb_half, out, B, H, W, heads, dil, scale, sB, sH, sW);
    return forward(dtype, ks, head_dim, a, Launch{grid_x, grid_y, grid_z, block_x});
}

// cfg[5] = {warps per block, query rows per warp, static smem bytes, threads per block, rows per block}
int na2d_host_config(int dtype, int ks, int head_dim, int* cfg) {
    const bool ok = dtype == 0 ? config_ks<float>(ks, head_dim, cfg) : config_ks<half_bits>(ks, head_dim, cfg);
    return ok ? 0 : -1;
}

int na2d_host_half_roundtrip(const float* in, unsigned short* half_out, float* back, int n) {
    for (int i = 0; i < n; ++i) {
        half_out[i] = na2d::float_to_half(in[i]);
        back[i] = na2d::half_to_float(half_out[i]);
    }
    return 0;
}

}  // extern "C"
