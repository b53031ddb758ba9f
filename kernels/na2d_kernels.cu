// tsjnet-sdk: extern "C" entry points of the fused 2-D neighborhood-attention forward kernel.
// The algorithm and its design notes live in na2d_core.cuh.
//
// Two entry points per (dtype, kernel size, head dim), both with TensorRT's AOT-plugin argument order
// (input tensors, then int32 scalars, then output tensors):
//   na2d_fwd_<f32|f16>_k<KS>_d<D>     (q, k, v,      B, H, W, heads, dil, scale_bits, sB, sH, sW,           out)
//   na2d_fwd_rpb_<f32|f16>_k<KS>_d<D> (q, k, v, rpb, B, H, W, heads, dil, scale_bits, sB, sH, sW, rpb_half, out)
// All scalars are int32 (TensorRT AOT plugins pass int32 SymExprs only): scale_bits is the IEEE bit
// pattern of the fp32 logit scale; sB, sH, sW are the element strides shared by q, k and v (head stride
// D, channel stride 1, 16-byte aligned rows); out is contiguous.
// Launch: block = Config::kThreads, grid = (tiles_x * tiles_y, dil * dil, B * heads), no dynamic smem.
//
// Build modes:
//   -DNA_ONE_T=<float|na2d::half_bits> -DNA_ONE_TNAME=<f32|f16> -DNA_ONE_KS=<k> -DNA_ONE_D=<d>
//        one instantiation (kernels/build.py: the PTX the TensorRT AOT plugin embeds);
//   -DNA_INSTANCE_LIST: no instantiation here; the file that #includes this one lists its
//        NA_DEFINE(T, TNAME, KS, D) lines after the #include (kernels/build.py's per-target modules);
//   otherwise the full matrix: f32/f16 x k 3..13 (odd) x head_dim 8, 16, 32, 64.

#include "na2d_core.cuh"

#define NA_CAT_(a, b) a##b
#define NA_CAT(a, b) NA_CAT_(a, b)
#define NA_NAME(prefix, TNAME, KS, D) NA_CAT(prefix, NA_CAT(TNAME, NA_CAT(_k, NA_CAT(KS, NA_CAT(_d, D)))))

#define NA_DEFINE(T, TNAME, KS, D)                                                                       \
    extern "C" __global__ void __launch_bounds__(na2d::Config<T, KS, D>::kThreads)                       \
    NA_NAME(na2d_fwd_, TNAME, KS, D)(const T* __restrict__ q, const T* __restrict__ k,                   \
                                     const T* __restrict__ v, int B, int H, int W, int heads, int dil,   \
                                     int scale_bits, int sB, int sH, int sW, T* __restrict__ out) {     \
        na2d::Args a;                                                                                    \
        a.q = q; a.k = k; a.v = v; a.rpb = nullptr; a.out = out;                                         \
        a.B = B; a.H = H; a.W = W; a.heads = heads; a.dil = dil;                                         \
        a.sB = sB; a.sH = sH; a.sW = sW; a.rpb_half = 0; a.scale = __int_as_float(scale_bits);           \
        na2d::na2d_forward_body<T, KS, D>(a);                                                            \
    }                                                                                                    \
    extern "C" __global__ void __launch_bounds__(na2d::Config<T, KS, D>::kThreads)                       \
    NA_NAME(na2d_fwd_rpb_, TNAME, KS, D)(const T* __restrict__ q, const T* __restrict__ k,               \
                                         const T* __restrict__ v, const void* __restrict__ rpb, int B,   \
                                         int H, int W, int heads, int dil, int scale_bits, int sB,       \
                                         int sH, int sW, int rpb_half, T* __restrict__ out) {           \
        na2d::Args a;                                                                                    \
        a.q = q; a.k = k; a.v = v; a.rpb = rpb; a.out = out;                                             \
        a.B = B; a.H = H; a.W = W; a.heads = heads; a.dil = dil;                                         \
        a.sB = sB; a.sH = sH; a.sW = sW; a.rpb_half = rpb_half; a.scale = __int_as_float(scale_bits);    \
        na2d::na2d_forward_body<T, KS, D>(a);                                                            \
    }

#if defined(NA_ONE_KS)
NA_DEFINE(NA_ONE_T, NA_ONE_TNAME, NA_ONE_KS, NA_ONE_D)
#elif defined(NA_INSTANCE_LIST)
// instantiations follow in the including file
#else

#ifndef NA_MATRIX_DIMS
#define NA_MATRIX_DIMS(T, TNAME, KS) NA_DEFINE(T, TNAME, KS, 8) NA_DEFINE(T, TNAME, KS, 16) \
                                     NA_DEFINE(T, TNAME, KS, 32) NA_DEFINE(T, TNAME, KS, 64)
#endif
#define NA_MATRIX_KS(T, TNAME) NA_MATRIX_DIMS(T, TNAME, 3) NA_MATRIX_DIMS(T, TNAME, 5) \
                               NA_MATRIX_DIMS(T, TNAME, 7) NA_MATRIX_DIMS(T, TNAME, 9) \
                               NA_MATRIX_DIMS(T, TNAME, 11) NA_MATRIX_DIMS(T, TNAME, 13)
NA_MATRIX_KS(float, f32)
NA_MATRIX_KS(na2d::half_bits, f16)

#endif
