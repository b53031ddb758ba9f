"""tsjnet_sdk.kernels"""
