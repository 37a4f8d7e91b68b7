"""Where writers write: in place for a local target, in a temporary folder uploaded on close otherwise.

Writers only ever write local files, with their safe-write steps (``.tmp`` then rename, the table on
close, ``spec.json`` last). For an ``s3://`` or ``gs://`` target they write into a new temporary
folder (under ``$TMPDIR``) and, once closed, :meth:`Staging.publish` uploads its files, the one that
marks the whole as complete (``spec.json``, or a bag after its ``.crc``) after all the others. A
partly uploaded dataset or shard therefore never reads as complete, and a sharded writer resuming
on the same target overwrites it.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import tempfile

from thresher.core.bag import files

# Uploads of one folder run side by side: they wait on the network, not on the CPU.
_UPLOAD_THREADS = 8


class Staging:
    """The local folder a writer fills for the target folder ``target`` (a local path or a URI)."""

    def __init__(self, target: str):
        self.target = target
        self.remote = files.is_remote(target)
        if self.remote:
            self._storage = files.writable_storage_for(target)
            self.folder = tempfile.mkdtemp(prefix="thresher-bag-")
        else:
            self.folder = target

    def path(self, name: str) -> str:
        """The local path a writer writes ``name`` to."""
        return os.path.join(self.folder, name)

    def publish(self, last: str) -> None:
        """Upload every file of the folder, ``last`` once all the others are stored; then remove the folder.

        Nothing to do for a local target, which was written in place. The folder is removed even when
        an upload fails: what was stored lacks ``last``, so it does not read as complete.
        """
        if not self.remote:
            return
        try:
            names = [name for name in os.listdir(self.folder) if name != last]
            with concurrent.futures.ThreadPoolExecutor(max(1, min(_UPLOAD_THREADS, len(names)))) as pool:
                list(pool.map(self._upload, names))
            self._upload(last)
        finally:
            self.discard()

    def _upload(self, name: str) -> None:
        self._storage.upload(self.path(name), files.join(self.target, name))

    def discard(self) -> None:
        """Remove the temporary folder and all in it (a local target is left to its writer)."""
        if self.remote:
            shutil.rmtree(self.folder, ignore_errors=True)
