// tsjnet-sdk: host-side launcher of the NA kernels for the compiled TensorRT plugin (na2d_trt_plugin.cpp).
//
// Plain C ABI, so that the plugin's C++ (which includes the TensorRT headers and is compiled by the host
// compiler) and the CUDA side (na2d_trt_launch.cu, compiled by nvcc) share no types beyond these.
#ifndef TSJNET_NA2D_TRT_LAUNCH_H
#define TSJNET_NA2D_TRT_LAUNCH_H

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

enum TsjnetNaDtype { TSJNET_NA_F32 = 0, TSJNET_NA_F16 = 1 };

// Status codes of tsjnet_na2d_launch (>0: the CUDA error of the launch).
enum TsjnetNaStatus {
    TSJNET_NA_OK = 0,
    TSJNET_NA_NOT_BUILT = -1,      // no kernel for this (dtype, kernel_size, head_dim) in the library
    TSJNET_NA_BAD_ARGUMENT = -2,   // non-positive sizes, dilation < 1, unaligned pointer
    TSJNET_NA_TOO_LARGE = -3       // int32 strides or CUDA grid y/z limits exceeded
};

// One launch: q, k, v, out contiguous [B, H, W, heads, head_dim] of `dtype`; rpb (may be null)
// [heads, 2k-1, 2k-1], fp16 when rpb_half != 0, else fp32.
typedef struct TsjnetNaLaunch {
    int dtype;
    int kernel_size;
    int head_dim;
    int B, H, W, heads, dilation;
    float scale;
    const void* q;
    const void* k;
    const void* v;
    const void* rpb;
    int rpb_half;
    void* out;
} TsjnetNaLaunch;

// 1 if the library holds the kernel for (dtype, kernel_size, head_dim), else 0.
int tsjnet_na2d_built(int dtype, int kernel_size, int head_dim);

// Checks the arguments, then launches asynchronously on `stream`. Returns a TsjnetNaStatus or, when the
// launch itself fails, the cudaError_t value (> 0).
int tsjnet_na2d_launch(const TsjnetNaLaunch* p, cudaStream_t stream);

// Text of a status code returned by tsjnet_na2d_launch (never null).
const char* tsjnet_na2d_status_string(int status);

#ifdef __cplusplus
}
#endif

#endif  // TSJNET_NA2D_TRT_LAUNCH_H
