"""An S3 endpoint for benchmarks: moto's server on a free loopback port, in a process of its own, with
``N`` small objects already in bucket ``bench`` under ``data/``.

The objects are put through moto's backend in that process (a second for 20k), not over HTTP (a
couple of minutes at moto's ~6 ms a put); what the benchmarks time afterwards all goes over HTTP.

Run: ``python benchmarks/moto_s3.py N``: prints the endpoint URL, then serves until stdin closes.
``MotoS3(N)`` does that from a benchmark, as a context manager giving the URL.
"""

from __future__ import annotations

import subprocess
import sys

BUCKET, PREFIX = "bench", "data/"
FILES_PER_FOLDER = 1000


class MotoS3:
    """``with MotoS3(20_000) as url:`` an endpoint holding ``s3://bench/data/`` with that many objects."""

    def __init__(self, objects: int) -> None:
        self._objects = objects
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> str:
        self._process = subprocess.Popen(
            [sys.executable, __file__, str(self._objects)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        url = self._process.stdout.readline().strip()
        if not url.startswith("http"):
            self.__exit__()
            raise RuntimeError("the moto S3 endpoint did not start")
        return url

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            self._process.stdin.close()  # the server's signal to stop
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None


def key(i: int) -> str:
    return f"{PREFIX}part{i // FILES_PER_FOLDER:04d}/{i:07d}.txt"


def serve(objects: int) -> None:
    import logging

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    backend.create_bucket(BUCKET, "us-east-1")
    for i in range(objects):
        backend.put_object(BUCKET, key(i), b"%d" % i)
    host, port = server.get_host_and_port()
    print(f"http://{host}:{port}", flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin (or goes away)
    server.stop()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
