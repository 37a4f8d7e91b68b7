"""The web gallery: browse datasources and saved datasets, query, facet, open datapoints, save datasets.

A Starlette app (``create_app``) that talks to the services only through the client library, with
each user's own token; plain HTML, CSS and JavaScript under ``static/`` (no build step). ``thresher
up`` serves it beside the services and ``thresher ui`` opens it. Needs the ``gallery`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from thresher.core.errors import MissingExtraError

if TYPE_CHECKING:
    from thresher.gallery.server import GalleryServer


def _require() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise MissingExtraError(f"the gallery needs {error.name!r}: pip install 'thresher[gallery]'") from None


def create_app(**options: Any) -> Any:
    """The gallery's ASGI app (see ``thresher.gallery.routes.create_app`` for the options)."""
    _require()
    from thresher.gallery.routes import create_app as create

    return create(**options)


def serve(**options: Any) -> GalleryServer:
    """Starts the gallery on a background thread; returns the running ``GalleryServer`` (``.url``, ``.stop()``)."""
    _require()
    from thresher.gallery.server import GalleryServer

    return GalleryServer(**options).start()
