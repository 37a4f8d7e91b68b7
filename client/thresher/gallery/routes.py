"""The gallery's routes: JSON under /api, images under /api/thumb and /api/file, the page and its static files.

Every data route calls the services with the signed-in user's token and maps their refusals onto
HTTP as they are: UNAUTHENTICATED → 401, PERMISSION_DENIED → 403, NOT_FOUND → 404, a bad query → 400.
Nothing user-supplied is ever turned into HTML here; the page renders all of it as text.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pathlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from thresher import datasets as datasets_api
from thresher import datasources as datasources_api
from thresher import flight_bytes, namespaces
from thresher.connection import Connection
from thresher.core import errors
from thresher.core.transport import thresher_home
from thresher.core.types import DATAPOINT_ID_COLUMN, FieldType
from thresher.datasource import Datasource
from thresher.gallery import thumbnails, views
from thresher.gallery.sessions import COOKIE, Connections, ReadGrants, ServiceAddresses

STATIC = pathlib.Path(__file__).parent / "static"
# The page loads only its own script and styles; an injected <script> or inline handler never runs.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; "
        "style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# A thumbnail URL carries its datapoint's version, so the bytes behind one URL never change.
IMMUTABLE = "private, max-age=31536000, immutable"
FACET_BINS = 20
FACET_VALUES = 15
NEIGHBOURS = 8  # tiles in a datapoint's nearest-neighbours strip


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def _status_of(error: Exception) -> int:
    if isinstance(error, errors.PermissionDeniedError):
        return 401 if getattr(error, "code", "") == "UNAUTHENTICATED" else 403
    if isinstance(error, errors.NotFoundError) and not isinstance(error, errors.UnknownFieldError):
        return 404
    if isinstance(error, errors.AlreadyExistsError):
        return 409
    if isinstance(error, (errors.QueryError, errors.InvalidArgumentError, ValueError)):
        return 400
    if isinstance(error, errors.ServiceUnavailableError):
        return 503
    return 500


def _error_response(error: Exception) -> JSONResponse:
    if isinstance(error, ApiError):
        return JSONResponse({"error": error.message, **error.extra}, error.status)
    body: dict[str, Any] = {"error": str(error) or type(error).__name__}
    if isinstance(error, errors.QueryExpressionError):
        body["position"] = error.position
    return JSONResponse(body, _status_of(error))


_Owner = TypeVar("_Owner")


def api(handler: Callable[[_Owner, Request], Any]) -> Callable[[_Owner, Request], Response]:
    """Runs a (blocking) handler method; Thresher's errors become their HTTP status with {"error": message}."""

    @functools.wraps(handler)
    def endpoint(owner: _Owner, request: Request) -> Response:
        try:
            result = handler(owner, request)
        except (ApiError, errors.ThresherError, ValueError) as error:
            return _error_response(error)
        return result if isinstance(result, Response) else JSONResponse(result)

    return endpoint


class Gallery:
    """The app's state: connections per token and the thumbnail cache."""

    def __init__(self, addresses: ServiceAddresses, cache_dir: str | os.PathLike[str]) -> None:
        self.connections = Connections(addresses)
        self.thumbs = thumbnails.ThumbnailCache(cache_dir)
        self.grants = ReadGrants()

    def conn(self, request: Request) -> Connection:
        return self.connections.for_token(request.cookies.get(COOKIE))

    # -- session --------------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token.strip():
            return JSONResponse({"error": "enter a token"}, 400)
        token = token.strip()
        try:
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(namespaces.list_namespaces, connection=self.connections.for_token(token))
        except errors.ThresherError as error:
            return _error_response(error)
        response = JSONResponse({"signed_in": True})
        response.set_cookie(
            COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/"
        )
        return response

    def logout(self, request: Request) -> Response:
        response = JSONResponse({"signed_in": False})
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return response

    # -- listing --------------------------------------------------------------------------------

    @api
    def list_namespaces(self, request: Request) -> Any:
        found = namespaces.list_namespaces(connection=self.conn(request))
        return {"namespaces": [n.name for n in found], "signed_in": COOKIE in request.cookies}

    @api
    def list_sources(self, request: Request) -> Any:
        conn, namespace = self.conn(request), _param(request, "namespace")
        sources = datasources_api.get_datasources(namespace, connection=conn)
        saved = datasets_api.get_datasets(namespace, connection=conn)
        return {
            "datasources": [{"name": s.name, "id": s.id, "source": s.source} for s in sources],
            "datasets": [{"name": d.dataset_name, "id": d.id, "datasource": d.name} for d in saved],
        }

    @api
    def describe(self, request: Request) -> Any:
        view = self._view(request)
        return {
            "datasource_id": view.id,
            "datasource": view.name,
            "fields": views.fields_json(view),
            "filter": _filter_text(view),
        }

    @api
    def count(self, request: Request) -> Any:
        return {"count": self._view(request).count()}

    @api
    def items(self, request: Request) -> Any:
        view = self._view(request)
        captions = [c for c in request.query_params.get("captions", "").split(",") if c.strip()]
        limit = _int(request, "limit", 100)
        result = views.page(view, request.query_params.get("cursor", ""), limit, [c.strip() for c in captions])
        body: dict[str, Any] = {
            "items": [dict(item, thumb=_thumb_url(item)) for item in result.items],
            "next": result.next_cursor,
        }
        if not request.query_params.get("cursor"):  # the first page also describes the view: one round trip less
            body.update(datasource_id=view.id, fields=views.fields_json(view))
        return body

    @api
    def facet(self, request: Request) -> Any:
        view = self._view(request)
        field = _param(request, "field")
        kind = view.fields.get(field)
        bins = FACET_BINS if kind in (FieldType.INT, FieldType.FLOAT) else 0
        facet = view.count_values(field, bins=bins, max_values=FACET_VALUES)
        return {
            "field": field,
            "type": kind.value if isinstance(kind, FieldType) else str(kind),
            "histogram": bool(bins),
            "total": facet.total_rows,
            "missing": facet.missing,
            "counts": [{k: views.json_value(v) for k, v in row.items()} for row in facet.counts.to_pylist()],
        }

    @api
    def datapoint(self, request: Request) -> Any:
        view = views.open_datasource(
            self.conn(request), _path_int(request, "datasource_id"), request.query_params.get("as_of", "")
        )
        datapoint_id = _path_int(request, "datapoint_id")
        found = view[view[DATAPOINT_ID_COLUMN] == datapoint_id].limit(1).all()
        if not len(found):
            raise ApiError(
                404,
                f"no datapoint {datapoint_id} in {view.namespace}/{view.name}"
                + (" at that instant" if view.query.as_of else ""),
            )
        point = found[0]
        return {
            "id": point.datapoint_id,
            "path": point.path,
            "datasource_id": view.id,
            "namespace": view.namespace,
            "datasource": view.name,
            "fields": views.fields_json(view),
            "values": {k: views.json_value(v) for k, v in point.metadata.items()},
            "history": views.history_json(view, point.path),
            "image": thumbnails.is_image_path(point.path),
            "file_url": f"/api/file/{view.id}/{point.datapoint_id}",
        }

    @api
    def neighbours(self, request: Request) -> Any:
        """The datapoints nearest this one by a vector field of its datasource (none without one)."""
        view = views.open_datasource(
            self.conn(request), _path_int(request, "datasource_id"), request.query_params.get("as_of", "")
        )
        vector_fields = [name for name, kind in view.fields.items() if kind is FieldType.VECTOR]
        field = request.query_params.get("field") or (vector_fields[0] if vector_fields else "")
        if not field:
            return {"field": None, "fields": [], "items": []}
        if field not in vector_fields:
            raise ApiError(400, f"{field!r} is not a vector field of {view.namespace}/{view.name}")
        path = self._path_of(view, _path_int(request, "datapoint_id"))
        k = max(1, min(_int(request, "k", NEIGHBOURS), 100))
        # The view selects every field, so the result already holds what a thumbnail's version needs.
        found = view.nearest(field, path=path, k=k + 1).arrow
        versions = [f for f in views.VERSION_FIELDS if f in found.column_names]
        columns = ["path", DATAPOINT_ID_COLUMN, "distance", *versions]
        items = []
        for row in found.select(columns).to_pylist():
            if row["path"] == path:
                continue
            item = views.item(view, dict(row, id=row[DATAPOINT_ID_COLUMN]), [])
            items.append(dict(item, thumb=_thumb_url(item), distance=row["distance"]))
        return {"field": field, "fields": vector_fields, "items": items[:k]}

    async def save(self, request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return JSONResponse({"error": "send JSON"}, 415)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "send a JSON object"}, 400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "send a JSON object"}, 400)

        def run() -> Any:
            name = body.get("name")
            if not isinstance(name, str) or not name.strip():
                raise ApiError(400, "give the dataset a name")
            view = views.open_view(
                self.conn(request),
                str(body.get("namespace", "")),
                str(body.get("source", "")),
                str(body.get("q", "")),
                str(body.get("as_of", "")),
            )
            saved = view.save_dataset(name.strip())
            return {"saved": saved.dataset_name, "namespace": saved.namespace}

        try:
            return JSONResponse(await run_in_threadpool(run))
        except (ApiError, errors.ThresherError, ValueError) as error:
            return _error_response(error)

    # -- bytes ----------------------------------------------------------------------------------

    async def thumb(self, request: Request) -> Response:
        # Async on purpose: a warm thumbnail is a grant check and a small file read, answered on the event
        # loop without a thread hop; anything that calls the services runs in the thread pool.
        from starlette.concurrency import run_in_threadpool

        try:
            datasource_id, datapoint_id = _path_int(request, "datasource_id"), _path_int(request, "datapoint_id")
            token = request.cookies.get(COOKIE)
            # Bytes only for datasources this token may read, cached thumbnail or not: the service is asked
            # (a grid asks once, not once per thumbnail: see ReadGrants).
            if not self.grants.may_read(token, datasource_id):
                await run_in_threadpool(views.open_datasource, self.conn(request), datasource_id)
                self.grants.remember(token, datasource_id)
            key = self.thumbs.key(datasource_id, datapoint_id, request.query_params.get("v", ""))
            found = self.thumbs.lookup(key)
            if found is None:
                found = await run_in_threadpool(self._make_thumb, request, datasource_id, datapoint_id, key)
            digest, file = found
            etag = f'"{digest[:32]}"'
            headers = {"ETag": etag, "Cache-Control": IMMUTABLE}
            if request.headers.get("if-none-match") == etag:
                return Response(status_code=304, headers=headers)
            return Response(file.read_bytes(), media_type="image/webp", headers=headers)
        except (ApiError, errors.ThresherError, ValueError) as error:
            return _error_response(error)

    def _make_thumb(
        self, request: Request, datasource_id: int, datapoint_id: int, key: str
    ) -> tuple[str, pathlib.Path]:
        conn = self.conn(request)
        path = self._path_of(views.open_datasource(conn, datasource_id), datapoint_id)
        data = b"".join(bytes(c) for c in flight_bytes.file_chunks(conn, datasource_id, path))
        try:
            return self.thumbs.add(key, data)
        except thumbnails.NotAnImageError as error:
            raise ApiError(415, f"{path}: {error}") from None

    def file(self, request: Request) -> Response:
        try:
            datasource_id, datapoint_id = _path_int(request, "datasource_id"), _path_int(request, "datapoint_id")
            conn = self.conn(request)
            view = views.open_datasource(conn, datasource_id)
            path = self._path_of(view, datapoint_id)
            chunks = flight_bytes.file_chunks(conn, datasource_id, path)
            first = next(chunks, b"")  # a refusal or a missing file surfaces here, before any header
        except (ApiError, errors.ThresherError, ValueError) as error:
            return _error_response(error)
        suffix = pathlib.PurePosixPath(path).suffix.lower()
        media = thumbnails.INLINE_TYPES.get(suffix)
        headers = {"Cache-Control": "private, no-cache"}
        if media is None:  # never let the browser render user files as a page
            media = "application/octet-stream"
            headers["Content-Disposition"] = "attachment"

        def body() -> Iterator[bytes]:
            yield bytes(first)
            for chunk in chunks:
                yield bytes(chunk)

        return StreamingResponse(body(), media_type=media, headers=headers)

    # -- helpers --------------------------------------------------------------------------------

    def _view(self, request: Request) -> Datasource:
        params = request.query_params
        return views.open_view(
            self.conn(request),
            _param(request, "namespace"),
            _param(request, "source"),
            params.get("q", ""),
            params.get("as_of", ""),
        )

    @staticmethod
    def _path_of(view: Datasource, datapoint_id: int) -> str:
        found = view[view[DATAPOINT_ID_COLUMN] == datapoint_id].select().limit(1).all()
        if not len(found):
            raise ApiError(404, f"no datapoint {datapoint_id} in {view.namespace}/{view.name}")
        return found[0].path


def _filter_text(view: Datasource) -> str:
    from thresher.expressions import to_text

    return to_text(view.query.filter) if view.query.filter is not None else ""


def _thumb_url(item: dict[str, Any]) -> str | None:
    if not thumbnails.is_image_path(item["path"]):
        return None
    from urllib.parse import quote

    return f"/api/thumb/{item['datasource_id']}/{item['id']}?v={quote(item['version'])}"


def _param(request: Request, name: str) -> str:
    value = request.query_params.get(name, "")
    if not value:
        raise ApiError(400, f"missing parameter {name!r}")
    return value


def _int(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got {text!r}") from None


def _path_int(request: Request, name: str) -> int:
    try:
        return int(request.path_params[name])
    except (KeyError, ValueError):
        raise ApiError(400, f"{name} must be an integer") from None


def _index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


def create_app(
    metadata_address: str | None = None,
    flight_address: str | None = None,
    scanner_address: str | None = None,
    *,
    tls: bool = False,
    root_certificates: bytes | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Starlette:
    """The gallery for the services at these addresses (default: the environment, like ``Connection``).

    Thumbnails are kept under ``cache_dir`` (default ``$THRESHER_HOME/gallery-cache``).
    """
    gallery = Gallery(
        ServiceAddresses(metadata_address, flight_address, scanner_address, tls, root_certificates),
        cache_dir or os.path.join(thresher_home(), "gallery-cache"),
    )
    routes = [
        Route("/", _index),
        Route("/api/login", gallery.login, methods=["POST"]),
        Route("/api/logout", gallery.logout, methods=["POST"]),
        Route("/api/namespaces", gallery.list_namespaces),
        Route("/api/sources", gallery.list_sources),
        Route("/api/describe", gallery.describe),
        Route("/api/count", gallery.count),
        Route("/api/items", gallery.items),
        Route("/api/facet", gallery.facet),
        Route("/api/datapoint/{datasource_id}/{datapoint_id}", gallery.datapoint),
        Route("/api/neighbours/{datasource_id}/{datapoint_id}", gallery.neighbours),
        Route("/api/datasets", gallery.save, methods=["POST"]),
        Route("/api/thumb/{datasource_id}/{datapoint_id}", gallery.thumb),
        Route("/api/file/{datasource_id}/{datapoint_id}", gallery.file),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        gallery.connections.close()

    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(SecurityHeaders)])
    app.state.gallery = gallery
    return app


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP response (a plain ASGI middleware: streams pass through)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [
                    (k.lower().encode(), v.encode())
                    for k, v in SECURITY_HEADERS.items()
                    if k.lower().encode() not in present
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
