"""The gallery served by uvicorn on a background thread (``thresher up``, the tests, the benchmark)."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn

from thresher.gallery.routes import create_app


class GalleryServer:
    """Serves ``create_app(**app_options)`` on ``host:port`` (0: a free port) until ``stop()``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        **app_options: Any,
    ) -> None:
        self.app = create_app(**app_options)
        config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="thresher-gallery", daemon=True)
        self.scheme = "https" if ssl_certfile else "http"
        self.host = host
        self.port = 0

    def start(self, timeout: float = 30.0) -> GalleryServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the gallery did not start on {self.host} (is the port taken?)")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the gallery did not start within {timeout:g} s")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/"

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def __enter__(self) -> GalleryServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
