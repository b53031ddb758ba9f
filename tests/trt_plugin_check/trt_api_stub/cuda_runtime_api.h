// tsjnet-sdk test stand-in for the CUDA runtime header: only cudaStream_t, which the plugin's C++ side
// needs (tests/test_trt_plugin_library.py compiles kernels/na2d_trt_plugin.cpp without a CUDA toolkit).
#ifndef TSJNET_TEST_CUDA_RUNTIME_API_STUB_H
#define TSJNET_TEST_CUDA_RUNTIME_API_STUB_H
typedef struct CUstream_st* cudaStream_t;
#endif
