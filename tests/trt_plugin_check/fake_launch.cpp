// tsjnet-sdk test stand-in for kernels/na2d_trt_launch.cu: same C ABI (na2d_trt_launch.h), no CUDA. It
// records the last launch and returns a settable status, so tests/trt_plugin_check/driver.cpp can check what
// the plugin's enqueue asks for without a GPU.
#include "na2d_trt_launch.h"

#define FAKE_EXPORT __attribute__((visibility("default")))

extern "C" {
FAKE_EXPORT TsjnetNaLaunch tsjnet_test_last_launch = {};
FAKE_EXPORT int tsjnet_test_launch_status = TSJNET_NA_OK;
FAKE_EXPORT int tsjnet_test_launch_count = 0;
}

extern "C" int tsjnet_na2d_built(int dtype, int kernel_size, int head_dim) {
    // spec.FULL_MATRIX: f32/f16 x k 3..13 odd x head_dim 8, 16, 32, 64
    bool const d_ok = head_dim == 8 || head_dim == 16 || head_dim == 32 || head_dim == 64;
    return (dtype == TSJNET_NA_F32 || dtype == TSJNET_NA_F16) && kernel_size >= 3 && kernel_size <= 13 &&
           kernel_size % 2 == 1 && d_ok;
}

extern "C" int tsjnet_na2d_launch(const TsjnetNaLaunch* p, cudaStream_t) {
    tsjnet_test_last_launch = *p;
    ++tsjnet_test_launch_count;
    return tsjnet_test_launch_status;
}

extern "C" const char* tsjnet_na2d_status_string(int status) { return status == 0 ? "ok" : "fake failure"; }
