"""The on-disk cache behind ML datasets: each file column value resolved to a local file, by strategy.

Every strategy shares one cache. A datapoint's file lands where ``QueryResult.download_files`` puts it
(``savedir``, default ``~/thresher/datasets/<namespace>/<datasource id>``) and a blob in the blob
cache (by hash, shared by every datasource); both are written under a temporary name and renamed, so
a file that exists is complete, and processes or threads racing for one file both succeed.
Files of a local folder source are read in place: copying them would only cost time and disk.

- ``lazy``: a file is fetched the first time its item is read (a batch's files together, on a few
  threads). In DataLoader or PyDataset worker processes too: each worker dials its own connection to
  the services after fork or spawn and fetches only the batches it is given, so nothing is fetched up
  front and the files fetched ahead are bounded by workers x the batches each holds ahead.
- ``background``: every file starts fetching in a thread pool at once; an item waits only for its own.
- ``preload``: everything is fetched (with a progress bar) before the dataset is returned.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import pathlib
from collections.abc import Iterable
from typing import Any

from thresher import blob_cache, downloads
from thresher.core.errors import InvalidArgumentError
from thresher.core.storage import in_repository, open_storage
from thresher.core.storage.local import LocalStorage
from thresher.local_files import safe_join

STRATEGIES = ("lazy", "background", "preload")
BACKGROUND_THREADS = 8
# Files of one batch fetched at once by a process (the main one or a worker).
BATCH_THREADS = 8
# What a file column value names: a file of the datasource (by path) or a blob (by hash).
DATAPOINT, BLOB = "datapoint", "blob"
Key = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class DatasourceHandle:
    """What fetching a datasource's files needs, and nothing more, so it pickles into worker processes
    (the connection pickles as its settings and dials afresh there)."""

    id: int
    namespace: str
    source: str
    revision: str
    connection: Any

    @classmethod
    def of(cls, datasource: Any) -> DatasourceHandle:
        return cls(datasource.id, datasource.namespace, datasource.source, datasource.revision, datasource.connection)


class FileStore:
    """Local files for (kind, value) keys of one datasource, fetched by ``strategy`` into ``savedir``."""

    def __init__(
        self,
        datasource: Any,
        keys: Iterable[Key],
        strategy: str = "lazy",
        savedir: str | os.PathLike[str] | None = None,
        progress: bool = True,
    ) -> None:
        if strategy not in STRATEGIES:
            raise InvalidArgumentError(f"strategy must be one of {STRATEGIES}, not {strategy!r}")
        self.strategy = strategy
        self._datasource = DatasourceHandle.of(datasource)
        self._local = _local_storage(datasource)
        self.folder = downloads.target_folder(datasource, savedir, keep_source_prefix=True)
        self._pending: dict[Key, concurrent.futures.Future[pathlib.Path]] = {}
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        keys = list(dict.fromkeys(keys))
        if strategy == "preload":
            self.fetch_all(keys, progress)
        elif strategy == "background":
            self._pool = concurrent.futures.ThreadPoolExecutor(BACKGROUND_THREADS, thread_name_prefix="thresher-ml")
            self._pending = {key: self._pool.submit(self._fetch, key) for key in keys if not self._is_ready(key)}
            self._pool.shutdown(wait=False)  # the queued fetches still run; no more are added

    @property
    def reads_in_place(self) -> bool:
        """Whether datapoint files are read where they are (a local folder source)."""
        return self._local is not None

    def path(self, key: Key) -> pathlib.Path:
        """The local file for ``key``, fetched now unless it is cached or a background fetch has it."""
        future = self._pending.get(key)
        if future is not None:
            return future.result()
        return self._fetch(key)

    def fetch_many(self, keys: Iterable[Key], threads: int = BATCH_THREADS) -> None:
        """Fetches the keys not cached yet (a batch's files) on up to ``threads`` threads; raises the
        first failure."""
        missing = [key for key in dict.fromkeys(keys) if key not in self._pending and not self._is_ready(key)]
        if len(missing) <= 1 or threads <= 1:
            for key in missing:
                self._fetch(key)
            return
        with concurrent.futures.ThreadPoolExecutor(min(threads, len(missing))) as pool:
            for _ in pool.map(self._fetch, missing):
                pass

    def fetch_all(self, keys: Iterable[Key], progress: bool = True) -> None:
        """Fetches every key not cached yet, in parallel, with progress bars."""
        keys = list(keys)
        paths = [value for kind, value in keys if kind == DATAPOINT]
        if paths and self._local is None:
            downloads.download_files(self._datasource, paths, self.folder, keep_source_prefix=False, progress=progress)
        digests = [value for kind, value in keys if kind == BLOB]
        if digests:
            blob_cache.cache_many(
                self._datasource.connection, digests, progress=progress, datasource_id=self._datasource.id
            )

    def wait(self) -> None:
        """Waits for every background fetch (raising the first failure)."""
        for future in list(self._pending.values()):
            future.result()

    def _target(self, key: Key) -> pathlib.Path:
        kind, value = key
        if kind == BLOB:
            return blob_cache.cached_path(value)
        if self._local is not None:
            return pathlib.Path(self._local.local_path(value))
        return safe_join(self.folder, value)

    def _is_ready(self, key: Key) -> bool:
        return self._local is not None and key[0] == DATAPOINT or self._target(key).exists()

    def _fetch(self, key: Key) -> pathlib.Path:
        kind, value = key
        target = self._target(key)
        if target.exists() or (kind == DATAPOINT and self._local is not None):
            return target
        if kind == BLOB:
            return blob_cache.cache(self._datasource.connection, value, datasource_id=self._datasource.id)
        return downloads.download_file(self._datasource, value, target)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for worker processes without this process's threads: a worker fetches lazily what it
        is asked for (files still fetching here in the background finish into the shared cache)."""
        state = dict(self.__dict__)
        state.update(_pending={}, _pool=None)
        return state


def _local_storage(datasource: Any) -> LocalStorage | None:
    """The source's folder when it is on this machine, else None (its files are fetched)."""
    if (
        in_repository(datasource.source, datasource.revision)
        or "://" in datasource.source
        and not datasource.source.startswith("file://")
    ):
        return None
    storage = open_storage(datasource.source)
    return storage if isinstance(storage, LocalStorage) else None
