"""A Ray Dataset uploaded as metadata: every block sent from a worker, all committed at once.

The driver picks a staging session (a random id) and materialises the dataset's blocks in the object
store, numbered in order. One Ray task per block converts it like ``upload_metadata_from_dataframe`` does
and sends it through Flight DoPut as block ``i`` of the session; the metadata service keeps it aside. A
retried task sends its block again and the copy replaces the first, so nothing is written twice. Once
every task has succeeded, the driver commits the session: all blocks in one atomic write. If any task
fails for good, the driver aborts the session and nothing is written.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from thresher import upload
from thresher.ray_engine import require_ray
from thresher.ray_engine.remote import DatasourceRef
from thresher.v1 import metadata_service_pb2 as ms

BLOCK_RETRIES = 3


def stage_block(source: DatasourceRef, session: str, index: int, block: Any, path_column: str | int | None) -> int:
    """Sends ``block`` as block ``index`` of ``session``; returns its row count."""
    datasource = source.open()
    try:
        table, path_name = upload.prepare(block, path_column, datasource._shared.write_types)  # noqa: SLF001
        datasource.connection.upsert_table(datasource.id, table, path_name, staging_session=session, block_index=index)
        return cast(int, table.num_rows)  # pyarrow has no type information
    finally:
        datasource.connection.close()


def upload_ray_dataset(
    datasource: Any,
    dataset: Any,
    path_column: str | int | None = None,
    *,
    create_missing: bool = False,
    num_cpus: float = 1,
) -> ms.CommitStagedUploadResponse | None:
    """Writes ``dataset`` (a Ray Dataset of a path column and field columns) to ``datasource``, atomically.

    Paths the datasource does not know are refused at the commit (``UnknownPathsError``, nothing
    written) unless ``create_missing``. Returns the service's counts, or None for a dataset with no blocks.
    """
    ray = require_ray()
    refs = dataset.to_arrow_refs()
    if not refs:
        return None
    session = uuid.uuid4().hex
    source = DatasourceRef.of(datasource)
    # retry_exceptions: a block that failed to send (a node gone) is sent again, replacing any copy that got in.
    stage = ray.remote(stage_block).options(
        num_cpus=num_cpus, max_retries=BLOCK_RETRIES, retry_exceptions=[ConnectionError, TimeoutError]
    )
    connection = datasource.connection
    pending = [stage.remote(source, session, index, ref, path_column) for index, ref in enumerate(refs)]
    try:
        try:
            ray.get(pending)
        except BaseException:
            # Stop the other blocks and let them end before aborting, so none lands after the abort.
            for ref in pending:
                ray.cancel(ref)
            ray.wait(pending, num_returns=len(pending))
            raise
        response: ms.CommitStagedUploadResponse = connection.call_metadata(
            "CommitStagedUpload",
            ms.CommitStagedUploadRequest(
                staging_session=session,
                datasource_id=datasource.id,
                block_count=len(refs),
                create_missing=create_missing,
            ),
        )
    except BaseException:
        try:
            connection.call_metadata(
                "AbortStagedUpload", ms.AbortStagedUploadRequest(staging_session=session, datasource_id=datasource.id)
            )
        except Exception:  # noqa: BLE001 - the first failure is the one to report; the session expires anyway
            pass
        raise
    datasource._shared.stale = True  # noqa: SLF001 - the upload may have added fields
    return response
