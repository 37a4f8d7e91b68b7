"""Content-addressed blob storage: bytes stored once under their sha256, in a folder by default."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable


class BlobStore:
    """Blobs as files ``<root>/<first two hex digits>/<sha256 hex>``, each written atomically."""

    def __init__(self, root: str) -> None:
        self.root = root

    def path(self, digest: str) -> str:
        return os.path.join(self.root, digest[:2], digest)

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            # A temporary name then a rename: readers never see a partial blob, and racing writers
            # of the same bytes both succeed.
            fd, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, target)
            except BaseException:
                if os.path.exists(temporary):
                    os.unlink(temporary)
                raise
        return digest

    def put_many(self, values: Iterable[bytes | None]) -> list[str | None]:
        return [None if value is None else self.put(value) for value in values]

    def exists(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))
