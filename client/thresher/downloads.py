"""Downloading datapoints' files: in parallel, with a progress bar, atomically, only inside the target folder.

A storage key that would land outside the folder is skipped with a warning and listed in the report,
as the AWS CLI does, and the other files still download.

Bytes come through the flight service, or straight from the bucket once
:func:`enable_s3_bucket_downloader` / :func:`enable_gcs_bucket_downloader` is called. Each file is
written to a temporary name beside its target and renamed into place, so no reader ever sees part
of a file, and a failed download leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from thresher.core.storage import in_repository, open_storage, parse_git_uri
from thresher.core.storage.storage_errors import UnsafePathError
from thresher.flight_bytes import file_chunks
from thresher.local_files import download_root, safe_join, write_atomically
from thresher.parallel import run_all

DEFAULT_THREADS = 16
# Scheme -> the SDK client that reads that scheme's buckets directly (unset: through the flight service).
_bucket_clients: dict[str, Any] = {}
_lock = threading.Lock()


def enable_s3_bucket_downloader(client: Any = None) -> None:
    """Downloads files of ``s3://`` datasources straight from the bucket with ``client`` (a boto3 S3
    client; default: one from boto3's usual configuration and ``$THRESHER_S3_ENDPOINT_URL``)."""
    from thresher.core.storage import s3

    with _lock:
        _bucket_clients["s3"] = client if client is not None else s3.client_for()


def enable_gcs_bucket_downloader(client: Any = None) -> None:
    """Downloads files of ``gs://`` datasources straight from the bucket with ``client`` (a
    ``google.cloud.storage.Client``; default: one from application-default credentials)."""
    from thresher.core.storage import gcs

    with _lock:
        _bucket_clients["gs"] = client if client is not None else gcs.client_for()


def disable_bucket_downloaders() -> None:
    """Sends every download through the flight service again."""
    with _lock:
        _bucket_clients.clear()


def bucket_client(scheme: str) -> Any:
    """The client enabled for reading ``scheme`` buckets directly, or None (read through flight)."""
    with _lock:
        return _bucket_clients.get(scheme)


def default_target(namespace: str, datasource_id: int) -> pathlib.Path:
    """``~/thresher/datasets/<namespace>/<datasource id>`` (the root is ``$THRESHER_DOWNLOAD_DIR`` when set)."""
    return download_root() / "datasets" / namespace / str(datasource_id)


def source_prefix(source_uri: str, revision: str = "") -> str:
    """The part of a source's location that ``keep_source_prefix`` keeps: the key prefix of a bucket
    source, the path of a repository source; nothing for a local folder."""
    if in_repository(source_uri, revision):
        return source_uri.strip("/")
    if source_uri.startswith("git+"):
        return parse_git_uri(source_uri)[2].strip("/")
    scheme, sep, rest = source_uri.partition("://")
    if sep and scheme in ("s3", "gs"):
        return rest.partition("/")[2].strip("/")
    return ""


def reader_for(datasource: Any) -> Callable[[str], Iterator[bytes | memoryview]]:
    """How to read a file of ``datasource``: from its bucket when that is enabled, else via flight."""
    client = bucket_client(datasource.source.partition("://")[0] if "://" in datasource.source else "")
    if client is not None:
        return open_storage(datasource.source, client=client).stream
    connection, datasource_id = datasource.connection, datasource.id
    return lambda path: file_chunks(connection, datasource_id, path)


def target_folder(datasource: Any, target_dir: str | os.PathLike[str] | None, keep_source_prefix: bool) -> pathlib.Path:
    """The folder a datasource's files are downloaded under."""
    folder = (
        pathlib.Path(target_dir).expanduser()
        if target_dir is not None
        else default_target(datasource.namespace, datasource.id)
    )
    prefix = source_prefix(datasource.source, datasource.revision) if keep_source_prefix else ""
    return safe_join(folder, prefix) if prefix else folder


class UnsafePathWarning(UserWarning):
    """Datapoint paths skipped by a download because they would land outside its folder."""


@dataclasses.dataclass
class DownloadReport:
    """What ``download_files`` did: the folder, and the datapoint paths downloaded, skipped and failed.

    ``skipped`` maps a path to why it was not fetched: it would land outside the folder (``..``, an
    absolute path, a drive letter, a symlink out) or its file was there already. ``failed`` maps a
    path to its exception. It is path-like (``os.fspath(report)`` is the folder).
    """

    folder: pathlib.Path
    downloaded: list[str] = dataclasses.field(default_factory=list)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    failed: dict[str, BaseException] = dataclasses.field(default_factory=dict)

    @property
    def unsafe(self) -> list[str]:
        """The skipped paths that would have landed outside the folder."""
        return [path for path, reason in self.skipped.items() if reason != ALREADY_THERE]

    def __fspath__(self) -> str:
        return os.fspath(self.folder)

    def __repr__(self) -> str:
        return (
            f"<DownloadReport {self.folder}: {len(self.downloaded)} downloaded, {len(self.skipped)} skipped, "
            f"{len(self.failed)} failed>"
        )


ALREADY_THERE = "already downloaded"


def download_files(
    datasource: Any,
    paths: Sequence[str],
    target_dir: str | os.PathLike[str] | None = None,
    keep_source_prefix: bool = True,
    redownload: bool = False,
    *,
    threads: int = DEFAULT_THREADS,
    progress: bool = True,
    raise_on_failure: bool = True,
) -> DownloadReport:
    """Downloads the files at ``paths`` of ``datasource`` under ``target_dir``; returns a DownloadReport.

    Files already there are kept unless ``redownload``. A path that would land outside the folder is
    skipped with an UnsafePathWarning naming it, and listed in the report; the rest still download.
    When downloads fail, the others still finish; then the first failure is raised (noting how many
    failed, the report in its ``download_report`` attribute), or with ``raise_on_failure=False`` the
    failures are only listed in the report.
    """
    from tqdm.auto import tqdm  # only here: keeps `import thresher` light

    folder = target_folder(datasource, target_dir, keep_source_prefix)
    report = DownloadReport(folder)
    targets = []
    for path in paths:
        try:
            target = safe_join(folder, path)
        except UnsafePathError as error:
            report.skipped[path] = str(error)
            continue
        if not redownload and target.exists():
            report.skipped[path] = ALREADY_THERE
        else:
            targets.append((path, target))
    if report.unsafe:
        shown = ", ".join(repr(path) for path in report.unsafe[:20])
        more = f" and {len(report.unsafe) - 20} more" if len(report.unsafe) > 20 else ""
        warnings.warn(
            f"skipped {len(report.unsafe)} path(s) that would land outside {folder}: {shown}{more}",
            UnsafePathWarning,
            stacklevel=3,
        )
    read = reader_for(datasource)

    def fetch(item: tuple[str, pathlib.Path]) -> None:
        path, target = item
        try:
            write_atomically(target, read(path))
        except BaseException as error:
            report.failed[path] = error
            raise
        report.downloaded.append(path)

    with tqdm(
        total=len(targets), desc=f"downloading to {folder}", unit=" files", disable=not progress, leave=False
    ) as bar:
        failures = run_all(fetch, targets, threads, lambda: bar.update(1))
    if failures and raise_on_failure:
        first = failures[0]
        if len(failures) > 1:
            first.add_note(f"{len(failures)} of {len(targets)} downloads into {folder} failed; this is the first")
        first.download_report = report  # type: ignore[attr-defined]
        raise first
    return report


def download_file(datasource: Any, path: str, target: str | os.PathLike[str] | None = None) -> pathlib.Path:
    """Downloads one file: to ``target`` (a file path, or a folder that exists, to keep the file's name
    there), by default to where ``download_files`` would put it. Returns the file's path."""
    if target is None:
        destination = safe_join(target_folder(datasource, None, True), path)
    else:
        destination = pathlib.Path(target).expanduser()
        if destination.is_dir():
            destination = safe_join(destination, path.rsplit("/", 1)[-1])
    write_atomically(destination, reader_for(datasource)(path))
    return destination
