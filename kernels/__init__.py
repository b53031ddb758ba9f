"""tsjnet_sdk.kernels: the SDK's CUDA neighborhood-attention kernel (forward) and its front ends.

Modules (import the one you need; this package imports nothing, in particular not torch):
  * ``spec``: entry-point names, argument list, block/grid of the kernel (plain Python);
  * ``build``: nvcc build of PTX + cubins per GPU target and of the TensorRT plugin PTX
    (``python -m tsjnet_sdk.kernels.build``);
  * ``torch_binding``: the kernel for CUDA tensors via cuda-python (``tsjnet_sdk.ops`` loads it
    lazily through ``provide()``; one-way, nothing here imports the ops);
  * ``trt_plugin``: ``register_na_plugin()`` for TensorRT >= 10.9 (AOT plugin tsjnet::NeighborhoodAttention2D).
See kernels/README.md.
"""
