"""The packages only the services use (DuckDB, gRPC health and reflection) come with ``thresher[server]``.

``pip install thresher`` is the client; the services import these through :func:`require`, so that
running them without the extra fails with one clear message naming the extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from thresher.core.errors import MissingExtraError

INSTALL_HINT = "pip install 'thresher[server]'"


def require(module: str) -> ModuleType:
    """Imports ``module``; MissingExtraError naming the ``server`` extra when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"the Thresher services need the package behind '{module}', which the "
            f"thresher[server] extra installs ({INSTALL_HINT}): {error}"
        ) from None
