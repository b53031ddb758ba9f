// tsjnet-sdk: the NA kernel instances of the compiled TensorRT plugin and their launcher.
//
// The kernels are exactly kernels/na2d_kernels.cu's entry points (the same na2d_core.cuh body, the same
// grid and block as spec.py / the PyTorch binding); this file only lists which instances the plugin
// library holds and launches them with the runtime API on TensorRT's stream.
//   default:                  the full matrix of spec.FULL_MATRIX (f32/f16 x k 3..13 x head_dim 8..64)
//   -DNA_TRT_TSJNET_ONLY:     TSJNet's instances only (spec.TSJNET_INSTANCES: k 7, head_dim 32), fast build
#define NA_INSTANCE_LIST
#include "na2d_kernels.cu"
#include "na2d_trt_launch.h"

#include <climits>
#include <cstring>

// X-macro list of (T, TNAME, KS, D); each entry defines both entry points and one table row.
#if defined(NA_TRT_TSJNET_ONLY)
#define NA_TRT_INSTANCES(X) X(float, f32, 7, 32) X(na2d::half_bits, f16, 7, 32)
#else
#define NA_TRT_DIMS(X, T, TNAME, KS) X(T, TNAME, KS, 8) X(T, TNAME, KS, 16) X(T, TNAME, KS, 32) X(T, TNAME, KS, 64)
#define NA_TRT_KS(X, T, TNAME) NA_TRT_DIMS(X, T, TNAME, 3) NA_TRT_DIMS(X, T, TNAME, 5) NA_TRT_DIMS(X, T, TNAME, 7) \
                               NA_TRT_DIMS(X, T, TNAME, 9) NA_TRT_DIMS(X, T, TNAME, 11) NA_TRT_DIMS(X, T, TNAME, 13)
#define NA_TRT_INSTANCES(X) NA_TRT_KS(X, float, f32) NA_TRT_KS(X, na2d::half_bits, f16)
#endif

NA_TRT_INSTANCES(NA_DEFINE)

namespace {

template <typename T> struct DtypeCode;
template <> struct DtypeCode<float> { static constexpr int value = TSJNET_NA_F32; };
template <> struct DtypeCode<na2d::half_bits> { static constexpr int value = TSJNET_NA_F16; };

struct Instance {
    int dtype, kernel_size, head_dim;
    int threads;         // block size (= the kernel's __launch_bounds__)
    int rows_per_block;  // query rows of one dilation group per block
    const void* plain;   // na2d_fwd_<t>_k<KS>_d<D>
    const void* with_rpb;  // na2d_fwd_rpb_<t>_k<KS>_d<D>
};

#define NA_TRT_ROW(T, TNAME, KS, D)                                                                    \
    {DtypeCode<T>::value, KS, D, na2d::Config<T, KS, D>::kThreads, na2d::Config<T, KS, D>::kRowsPerBlock, \
     reinterpret_cast<const void*>(&NA_NAME(na2d_fwd_, TNAME, KS, D)),                                 \
     reinterpret_cast<const void*>(&NA_NAME(na2d_fwd_rpb_, TNAME, KS, D))},

const Instance kInstances[] = {NA_TRT_INSTANCES(NA_TRT_ROW)};

const Instance* find(int dtype, int kernel_size, int head_dim) {
    for (const Instance& in : kInstances) {
        if (in.dtype == dtype && in.kernel_size == kernel_size && in.head_dim == head_dim) return &in;
    }
    return nullptr;
}

long long cdiv(long long a, long long b) { return (a + b - 1) / b; }

}  // namespace

extern "C" int tsjnet_na2d_built(int dtype, int kernel_size, int head_dim) {
    return find(dtype, kernel_size, head_dim) != nullptr ? 1 : 0;
}

extern "C" int tsjnet_na2d_launch(const TsjnetNaLaunch* p, cudaStream_t stream) {
    if (p == nullptr) return TSJNET_NA_BAD_ARGUMENT;
    const Instance* in = find(p->dtype, p->kernel_size, p->head_dim);
    if (in == nullptr) return TSJNET_NA_NOT_BUILT;
    if (p->B < 1 || p->H < 1 || p->W < 1 || p->heads < 1 || p->dilation < 1 || !p->q || !p->k || !p->v || !p->out)
        return TSJNET_NA_BAD_ARGUMENT;
    // The kernel reads and writes 16-byte vectors (TensorRT's allocations are 256-byte aligned).
    const void* ptrs[] = {p->q, p->k, p->v, p->out};
    for (const void* ptr : ptrs) {
        if (reinterpret_cast<unsigned long long>(ptr) % 16 != 0) return TSJNET_NA_BAD_ARGUMENT;
    }
    // Contiguous strides as int32 (the kernel's ABI): one image must fit, and so must grid y/z.
    const long long sW = static_cast<long long>(p->heads) * p->head_dim;
    const long long sH = sW * p->W;
    const long long sB = sH * p->H;
    if (sB > INT_MAX || static_cast<long long>(p->B) * p->heads > 65535 ||
        static_cast<long long>(p->dilation) * p->dilation > 65535)
        return TSJNET_NA_TOO_LARGE;
    const long long tiles_x = cdiv(cdiv(p->W, p->dilation), na2d::kWarp);
    const long long tiles_y = cdiv(cdiv(p->H, p->dilation), in->rows_per_block);
    if (tiles_x * tiles_y > INT_MAX) return TSJNET_NA_TOO_LARGE;
    const dim3 grid(static_cast<unsigned>(tiles_x * tiles_y), static_cast<unsigned>(p->dilation * p->dilation),
                    static_cast<unsigned>(p->B * p->heads));
    const dim3 block(static_cast<unsigned>(in->threads));

    // Arguments in the entry points' order (spec.ARGS_PLAIN / spec.ARGS_RPB).
    const void* q = p->q;
    const void* k = p->k;
    const void* v = p->v;
    const void* rpb = p->rpb;
    void* out = p->out;
    int B = p->B, H = p->H, W = p->W, heads = p->heads, dil = p->dilation;
    int scale_bits = 0;
    memcpy(&scale_bits, &p->scale, sizeof scale_bits);
    int isB = static_cast<int>(sB), isH = static_cast<int>(sH), isW = static_cast<int>(sW);
    int rpb_half = p->rpb_half ? 1 : 0;
    cudaError_t err;
    if (rpb == nullptr) {
        void* args[] = {&q, &k, &v, &B, &H, &W, &heads, &dil, &scale_bits, &isB, &isH, &isW, &out};
        err = cudaLaunchKernel(in->plain, grid, block, args, 0, stream);
    } else {
        void* args[] = {&q, &k, &v, &rpb, &B, &H, &W, &heads, &dil, &scale_bits, &isB, &isH, &isW, &rpb_half, &out};
        err = cudaLaunchKernel(in->with_rpb, grid, block, args, 0, stream);
    }
    return err == cudaSuccess ? TSJNET_NA_OK : static_cast<int>(err);
}

extern "C" const char* tsjnet_na2d_status_string(int status) {
    switch (status) {
    case TSJNET_NA_OK: return "ok";
    case TSJNET_NA_NOT_BUILT:
        return "no kernel for this dtype / kernel_size / head_dim in the plugin library (rebuild it without "
               "--tsjnet-only, or see spec.FULL_MATRIX)";
    case TSJNET_NA_BAD_ARGUMENT: return "invalid launch arguments (sizes < 1, dilation < 1, null or unaligned pointer)";
    case TSJNET_NA_TOO_LARGE:
        return "tensor too large for the kernel (one image over 2^31 elements, batch*heads or dilation^2 over 65535)";
    default: return cudaGetErrorString(static_cast<cudaError_t>(status));
    }
}
