"""tsjnet_sdk.export"""
