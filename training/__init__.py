"""tsjnet_sdk.training"""
