"""Bag datasets as users import them: the format's classes (from ``thresher.core.bag``) with ``Loader`` and ``sources``.

``Loader`` and ``sources`` are here, as in ``granular``, so ``import thresher.bag as granular`` runs a granular
training script unchanged. The format itself (readers, writers, specs, codecs) lives in ``thresher.core.bag``,
which the flight service shares; its modules' old paths (``thresher.bag.reader``, ...) still import, deprecated.
"""

from typing import Any

from thresher import sources as sources
from thresher._moved import moved_attribute
from thresher.core import bag as _format
from thresher.core.bag import *  # noqa: F403 - the format's public names, listed once in its __all__
from thresher.loader.loader import Loader as Loader

__all__ = sorted([*_format.__all__, "Loader", "sources"])


def __getattr__(name: str) -> Any:
    # ``thresher.bag.formats`` and the other moved modules, reached as attributes: the deprecated alias.
    return moved_attribute(__name__, name)
