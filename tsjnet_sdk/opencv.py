"""OpenCV, the optional ``[video]`` extra: the one place that imports it and says how to install it.

Videos, cameras, the rig (registration) and ``tsjnet calibrate`` need OpenCV (``opencv-python-headless``);
``import tsjnet_sdk`` and still-image fusion do not.
"""

from __future__ import annotations

from typing import Any

from tsjnet_sdk.errors import TsjnetError

INSTALL_HINT = "pip install 'tsjnet-sdk[video]'"


class MissingExtraError(TsjnetError, ImportError):
    """An optional dependency of the SDK is not installed; the message names the pip command."""


def require_cv2(feature: str = "videos, cameras and registration") -> Any:
    """The ``cv2`` module, or MissingExtraError with one line naming the install command."""
    try:
        import cv2
    except ImportError:
        raise MissingExtraError(f"{feature} need OpenCV, which is not installed: {INSTALL_HINT}") from None
    return cv2
