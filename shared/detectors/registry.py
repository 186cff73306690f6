"""The detector plug-in registry: detectors are created by key (``yunet``, ``mtcnn``, ...).

Built-in plug-ins are registered by module path and imported only when created, so a detector
whose package is missing (MTCNN needs torch) costs nothing until asked for, and then fails with
:class:`~shared.detectors.base.DetectorUnavailableError` naming the extra to install. Other
packages add detectors with :func:`register_detector`, or through the ``uunet.detectors``
entry-point group (``key = "package.module:Factory"``).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from shared.detectors.base import (
    DetectorNotFoundError,
    DetectorOptions,
    DetectorUnavailableError,
    FaceDetector,
)

__all__ = ["DEFAULT_DETECTOR", "available_detectors", "create_detector", "register_detector"]

log = logging.getLogger(__name__)

DetectorFactory = Callable[..., FaceDetector]

# The default, chosen by recall and speed measured on ../shared/media (docs: edge_agent/README.md).
DEFAULT_DETECTOR = "yunet"
ENTRY_POINT_GROUP = "uunet.detectors"

_BUILTIN: dict[str, str] = {
    "yunet": "shared.detectors.yunet:YuNetDetector",
    "mtcnn": "shared.detectors.mtcnn:MtcnnDetector",
    "centerface": "shared.detectors.centerface:CenterFaceDetector",
}
_REGISTERED: dict[str, DetectorFactory] = {}


def register_detector(key: str, factory: DetectorFactory, *, replace: bool = False) -> None:
    """Register ``factory(options, **kwargs) -> FaceDetector`` under ``key``.

    Raises:
        ValueError: the key is empty, or already taken and ``replace`` is false.
    """
    if not key or not key.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"detector key must be a non-empty identifier, got {key!r}")
    if not replace and (key in _REGISTERED or key in _BUILTIN):
        raise ValueError(f"a detector is already registered under {key!r}")
    _REGISTERED[key] = factory


def _entry_point_keys() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_detectors() -> list[str]:
    """All registered keys (built-in, registered and entry points), installed or not."""
    return sorted({*_BUILTIN, *_REGISTERED, *_entry_point_keys()})


def _load(target: str) -> DetectorFactory:
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute)


def create_detector(
    key: str, options: DetectorOptions | None = None, **kwargs: Any
) -> FaceDetector:
    """Create the detector registered under ``key``.

    Raises:
        DetectorNotFoundError: no detector has that key (the message lists the known ones).
        DetectorUnavailableError: its package is not installed (the message names the extra).
        shared.detectors.base.DetectorError: its model could not be loaded.
    """
    options = options or DetectorOptions()
    if key in _REGISTERED:
        factory = _REGISTERED[key]
    elif key in _BUILTIN:
        factory = _load(_BUILTIN[key])
    else:
        plugins = _entry_point_keys()
        if key not in plugins:
            raise DetectorNotFoundError(
                f"unknown detector {key!r}; known detectors: {', '.join(available_detectors())}"
            )
        try:
            factory = plugins[key].load()
        except ImportError as exc:
            raise DetectorUnavailableError(
                f"detector plug-in {key!r} failed to import: {exc}"
            ) from exc
    detector = factory(options, **kwargs)
    log.info("detector %s ready (%s)", key, options)
    return detector
