"""Staged uploads: blocks of one upload sent by many writers, written to the store together.

Each block is kept as an Arrow IPC file ``<directory>/<session>/<index>.arrow``, written under a
temporary name and renamed, so a block sent again (a retried writer) replaces its earlier copy and a
block cut short is never seen. ``take`` hands the blocks of a session back for one atomic write and
``drop`` forgets them. The store is not touched here: the servicer writes what ``take`` returns
through the store's ordinary atomic upsert.

The directory is ``$THRESHER_STAGING_DIR``, else ``<THRESHER_HOME>/staging``. Metadata replicas
behind one address must share it (a shared volume), since the blocks of a session may reach any of them.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid

import pyarrow as pa

from thresher.core.settings import Settings, env_name
from thresher.services.metadata.domain_errors import FailedPrecondition, InvalidArgument, NotFound

STAGING_DIR_ENV = env_name("staging_dir")
# Sessions nobody committed or aborted (their driver died) are removed after this long.
ABANDONED_AFTER_S = 24 * 3600
_SESSION = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SUFFIX = ".arrow"
# Kept in each block's schema metadata: every block of a session must agree on them.
_PATH_KEY, _DATASOURCE_KEY = b"thresher.path_column", b"thresher.datasource_id"


class StagingArea:
    """Blocks of staged uploads, by session and block index, on local (or shared) disk."""

    def __init__(self, directory: str | None = None) -> None:
        if not directory:
            directory = Settings.read("staging_dir") or os.path.join(Settings.read("home"), "staging")
        self.directory = directory

    def put(self, session: str, datasource_id: int, index: int, path_column: str, table: pa.Table) -> None:
        """Keeps ``table`` as block ``index`` of ``session`` (an upload to ``datasource_id``), replacing an
        earlier copy of that block."""
        folder = self._folder(session)
        if index < 0:
            raise InvalidArgument(f"block_index must not be negative, got {index}")
        self._refuse_ended(session)
        if not os.path.isdir(folder):
            self._remove_abandoned()
            os.makedirs(folder, exist_ok=True)
        # The path column's name travels in the schema, so every block of a session can be checked for it.
        table = table.replace_schema_metadata(
            {
                **(table.schema.metadata or {}),
                _PATH_KEY: path_column.encode(),
                _DATASOURCE_KEY: str(datasource_id).encode(),
            }
        )
        temporary = os.path.join(folder, f".{index}.{uuid.uuid4().hex}.tmp")
        with pa.OSFile(temporary, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        os.replace(temporary, os.path.join(folder, f"{index}{_SUFFIX}"))
        # A block that arrived while its session was being committed or aborted must not linger.
        if os.path.exists(self._ended(session)):
            shutil.rmtree(folder, ignore_errors=True)
            self._refuse_ended(session)

    def take(self, session: str, datasource_id: int, block_count: int) -> tuple[pa.Table, str]:
        """Blocks ``0 .. block_count-1`` of ``session`` as one table, and their path column's name.

        Missing blocks, blocks past the count, blocks staged for another datasource or naming different
        path columns are refused: the caller then writes nothing.
        """
        folder = self._folder(session)
        if block_count < 1:
            raise InvalidArgument(f"block_count must be at least 1, got {block_count}")
        self._refuse_ended(session)
        if not os.path.isdir(folder):
            raise NotFound(f"no staged upload {session!r}")
        present = sorted(int(name[: -len(_SUFFIX)]) for name in os.listdir(folder) if name.endswith(_SUFFIX))
        missing = sorted(set(range(block_count)) - set(present))
        extra = [index for index in present if index >= block_count]
        if missing or extra:
            raise FailedPrecondition(
                f"staged upload {session!r} does not hold exactly blocks 0..{block_count - 1}: "
                f"missing {missing[:20]}, beyond the count {extra[:20]}"
            )
        tables = [
            pa.ipc.open_file(pa.memory_map(os.path.join(folder, f"{i}{_SUFFIX}"))).read_all()
            for i in range(block_count)
        ]
        targets = {(t.schema.metadata or {}).get(_DATASOURCE_KEY, b"").decode() for t in tables}
        if targets != {str(datasource_id)}:
            raise InvalidArgument(
                f"staged upload {session!r} was staged for datasource {sorted(targets)}, not {datasource_id}"
            )
        path_columns = {(t.schema.metadata or {}).get(_PATH_KEY, b"").decode() for t in tables}
        if len(path_columns) != 1:
            raise InvalidArgument(
                f"the blocks of staged upload {session!r} name different path columns: {sorted(path_columns)}"
            )
        # Blocks may lack columns that were all missing in them: a missing column is "no value", as null is.
        try:
            table = pa.concat_tables([t.replace_schema_metadata(None) for t in tables], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise InvalidArgument(
                f"the blocks of staged upload {session!r} give a column different types: {error}"
            ) from None
        return table, path_columns.pop()

    def drop(self, session: str) -> int:
        """Forgets ``session``'s blocks and refuses any later block of it (a writer still running when its
        upload was committed or aborted); returns how many blocks there were."""
        folder = self._folder(session)
        os.makedirs(self.directory, exist_ok=True)
        with open(self._ended(session), "wb"):
            pass
        if not os.path.isdir(folder):
            return 0
        count = sum(name.endswith(_SUFFIX) for name in os.listdir(folder))
        shutil.rmtree(folder, ignore_errors=True)
        return count

    def _ended(self, session: str) -> str:
        return os.path.join(self.directory, f"{session}.ended")

    def _refuse_ended(self, session: str) -> None:
        if os.path.exists(self._ended(session)):
            raise FailedPrecondition(f"staged upload {session!r} was already committed or aborted")

    def _folder(self, session: str) -> str:
        if not _SESSION.fullmatch(session or ""):
            raise InvalidArgument(f"staging session must be 1-64 letters, digits, '-' or '_', got {session!r}")
        return os.path.join(self.directory, session)

    def _remove_abandoned(self) -> None:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return
        cutoff = time.time() - ABANDONED_AFTER_S
        for name in names:
            folder = os.path.join(self.directory, name)
            try:
                if os.path.getmtime(folder) < cutoff:
                    if os.path.isdir(folder):
                        shutil.rmtree(folder, ignore_errors=True)
                    else:
                        os.remove(folder)
            except FileNotFoundError:
                pass
