"""A path in a git repository at a revision, as read-only storage, through the ``git`` command.

Files are listed from the tree at the revision (``git ls-tree``) and bytes read from the objects
(one long-lived ``git cat-file --batch-command`` per storage). The revision is resolved to a commit
when the storage is opened, so a listing and the reads after it agree; a moving branch is seen anew
by the next storage opened on it (a rescan).

A repository is a local path (used in place) or a URL git can reach (``file://`` included), mirrored
into ``$THRESHER_HOME/git/`` and fetched when a revision is missing or ``refresh=True``. Only the file,
git, http(s) and ssh transports are allowed: git's ``ext::`` transport runs commands.

URI form (pip's VCS form): ``git+<repository>@<revision>#subdirectory=<path>``, e.g.
``git+file:///srv/repo@main#subdirectory=images`` or ``git+https://host/repo.git@v1.2``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Iterator
from typing import IO
from urllib.parse import quote, unquote

from thresher.core.storage.base import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_PAGE_SIZE,
    Entry,
    Storage,
    check_range,
    clean_relative,
)
from thresher.core.storage.storage_errors import (
    InvalidStorageUriError,
    StorageAccessDeniedError,
    StorageError,
    StorageNotFoundError,
    StorageUnavailableError,
    UnknownRevisionError,
)
from thresher.core.storage.timeouts import StorageTimeouts, describe_timeout
from thresher.core.transport import thresher_home

# Never prompt for credentials (fail instead), parse English messages, and refuse the ext:: transport.
_GIT_SETTINGS = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_ALLOW_PROTOCOL": "file:git:http:https:ssh"}
_HEADER = re.compile(rb"^([0-9a-f]{40,64}) (\w+) (\d+)\n$")
# Blobs larger than this are streamed from their own process rather than read whole through the
# shared batch process, so one big read neither holds everyone else up nor sits in memory twice.
_BATCH_LIMIT = 64 * 1024 * 1024
_SYMLINK_MODE = "120000"


def _git_env() -> dict[str, str]:
    # Over HTTP(S), a server that sends nothing for the read timeout fails the clone or fetch instead of
    # hanging it; a slow one that keeps sending never does. Settings of the caller's own win.
    read = StorageTimeouts.from_env().read
    silence = {"GIT_HTTP_LOW_SPEED_LIMIT": "1", "GIT_HTTP_LOW_SPEED_TIME": str(max(1, math.ceil(read)))}
    return {**silence, **os.environ, **_GIT_SETTINGS}


class GitRepository:
    """A repository git can read: ``location`` is a local path (used in place) or a URL (mirrored under
    ``cache_dir``, default ``$THRESHER_HOME/git``)."""

    def __init__(self, location: str, cache_dir: str | None = None) -> None:
        self.location = location
        local = _local_path(location)
        self.remote = local is None
        if local is not None:
            if not os.path.isdir(local):
                raise StorageNotFoundError(f"git repository {location} does not exist")
            self.path = local
        else:
            cache = cache_dir or os.path.join(thresher_home(), "git")
            self.path = os.path.join(cache, hashlib.sha256(location.encode()).hexdigest()[:24] + ".git")
            self._mirror()
        self.run("rev-parse", "--git-dir")  # fails with a clear message when it is not a repository

    def run(self, *args: str) -> bytes:
        """Runs ``git <args>`` in the repository; its stdout, or a storage error built from stderr."""
        result = subprocess.run(["git", "-C", self.path, *args], capture_output=True, env=_git_env(), check=False)
        if result.returncode:
            raise _git_error(result.stderr.decode(errors="replace"), self.location)
        return result.stdout

    def resolve(self, revision: str, refresh: bool = False) -> str:
        """The commit id ``revision`` names (fetching first for a remote when ``refresh`` or when missing)."""
        if not revision or revision.startswith("-"):
            raise UnknownRevisionError(f"{revision!r} is not a revision of git repository {self.location}")
        if self.remote and refresh:
            self.fetch()
        commit = self._rev_parse(revision)
        if commit is None and self.remote and not refresh:
            self.fetch()
            commit = self._rev_parse(revision)
        if commit is None:
            raise UnknownRevisionError(f"git repository {self.location} has no revision {revision!r}")
        return commit

    def _rev_parse(self, revision: str) -> str | None:
        result = subprocess.run(
            ["git", "-C", self.path, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"],
            capture_output=True,
            env=_git_env(),
            check=False,
        )
        if result.returncode:
            return None
        return result.stdout.decode().strip() or None

    def fetch(self) -> None:
        """Updates the mirror of a remote repository (a no-op for a local one)."""
        if self.remote:
            with _locked(self.path + ".lock"):
                self.run("fetch", "--prune", "--quiet", "origin")

    def _mirror(self) -> None:
        """Clones the remote into the cache once; concurrent processes wait for the first."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with _locked(self.path + ".lock"):
            if os.path.isdir(self.path):
                return
            temporary = tempfile.mkdtemp(dir=os.path.dirname(self.path), prefix=".clone-")
            try:
                result = subprocess.run(
                    ["git", "clone", "--mirror", "--quiet", "--", self.location, temporary],
                    capture_output=True,
                    env=_git_env(),
                    check=False,
                )
                if result.returncode:
                    raise _git_error(result.stderr.decode(errors="replace"), self.location)
                os.replace(temporary, self.path)
            finally:
                shutil.rmtree(temporary, ignore_errors=True)


class GitStorage(Storage):
    """The files under ``root`` in ``repository`` at ``revision`` (read-only)."""

    read_only = True

    def __init__(
        self, repository: str | GitRepository, revision: str = "HEAD", root: str = "", *, refresh: bool = False
    ) -> None:
        self.repository = repository if isinstance(repository, GitRepository) else GitRepository(repository)
        self.revision = revision or "HEAD"
        self.root = clean_relative(root)
        self.commit = self.repository.resolve(self.revision, refresh)
        self.uri = git_uri(self.repository.location, self.revision, self.root)
        self._prefix = self.root + "/" if self.root else ""
        self._lock = threading.Lock()
        self._batch: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[[list[subprocess.Popen[bytes] | None]], GitStorage] | None = None
        self._commit_time_ns = int(self.repository.run("show", "-s", "--format=%ct", self.commit).strip()) * 10**9
        if self.root and self._object_type(self.root) != "tree":
            raise StorageNotFoundError(
                f"no folder {self.root!r} in git repository {self.repository.location} at revision {self.revision!r}"
            )

    def object_uri(self, path: str) -> str:
        return git_uri(self.repository.location, self.revision, self._prefix + path)

    def pages(self, prefix: str = "", page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[list[Entry]]:
        folder = clean_relative(prefix.rpartition("/")[0])
        tree = (self._prefix + folder).rstrip("/")
        if tree and self._object_type(tree) != "tree":
            return  # a prefix naming no folder lists nothing, as on an object store
        base = folder + "/" if folder else ""
        command = [
            "git",
            "-C",
            self.repository.path,
            "ls-tree",
            "-r",
            "-l",
            "-z",
            "--end-of-options",
            f"{self.commit}:{tree}",
        ]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_git_env())
        page: list[Entry] = []
        try:
            for record in _records(_pipe(process.stdout)):
                meta, _, name = record.partition(b"\t")
                mode, kind, oid, size = meta.decode().split()
                path = base + name.decode("utf-8", "surrogateescape")
                # Submodules (commits) have no bytes here; symlinks are blobs holding a target path.
                if kind != "blob" or mode == _SYMLINK_MODE or not path.startswith(prefix):
                    continue
                page.append(Entry(path, int(size), self._commit_time_ns, oid))
                if len(page) >= page_size:
                    yield page
                    page = []
            if process.wait():
                raise _git_error(_pipe(process.stderr).read().decode(errors="replace"), self.repository.location)
            if page:
                yield page
        finally:
            process.kill()
            process.wait()
            _pipe(process.stdout).close()
            _pipe(process.stderr).close()

    def stat(self, path: str) -> Entry:
        oid, kind, size = self._info(path)
        if kind != "blob":
            raise StorageNotFoundError(f"{self.object_uri(path)} is a {kind}, not a file")
        return Entry(clean_relative(path), size, self._commit_time_ns, oid)

    def read(self, path: str, start: int = 0, end: int | None = None) -> bytes:
        check_range(start, end)
        entry = self.stat(path)
        if entry.size > _BATCH_LIMIT and (end is None or end - start < entry.size):
            return b"".join(self.stream(path, start, end))
        data = self._contents(self._name(path), path)
        return data[start:end] if (start or end is not None) else data

    def stream(
        self, path: str, start: int = 0, end: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        check_range(start, end)
        oid = self.stat(path).etag
        assert oid is not None, "a git entry carries its object id"
        process = subprocess.Popen(
            ["git", "-C", self.repository.path, "cat-file", "blob", oid],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_git_env(),
        )
        try:
            position = 0
            while end is None or position < end:
                chunk = _pipe(process.stdout).read(chunk_size)
                if not chunk:
                    break
                low, high = max(start - position, 0), len(chunk) if end is None else min(len(chunk), end - position)
                position += len(chunk)
                if low < high:
                    yield chunk[low:high]
        finally:
            process.kill()
            process.wait()
            _pipe(process.stdout).close()

    def close(self) -> None:
        with self._lock:
            batch, self._batch = self._batch, None
        _stop([batch])

    # -- the batch process ------------------------------------------------------------------------

    def _name(self, path: str) -> str:
        return f"{self.commit}:{self._prefix}{clean_relative(path)}"

    def _object_type(self, tree_path: str) -> str | None:
        try:
            return self._ask("info", f"{self.commit}:{tree_path}", tree_path)[1]
        except StorageNotFoundError:
            return None

    def _info(self, path: str) -> tuple[str, str, int]:
        return self._ask("info", self._name(path), path)

    def _contents(self, name: str, path: str) -> bytes:
        with self._lock:
            oid, kind, size = self._command("contents", name, path)
            data = self._batch_output().read(size + 1)[:-1]  # the content, then a newline
        if kind != "blob":
            raise StorageNotFoundError(f"{self.object_uri(path)} is a {kind}, not a file")
        return data

    def _ask(self, command: str, name: str, path: str) -> tuple[str, str, int]:
        with self._lock:
            return self._command(command, name, path)

    def _batch_output(self) -> IO[bytes]:
        """The batch process's output, once ``_command`` has started it (the lock held)."""
        if self._batch is None:
            raise StorageError(f"git cat-file is not running for {self.repository.location}")
        return _pipe(self._batch.stdout)

    def _command(self, command: str, name: str, path: str) -> tuple[str, str, int]:
        """Sends one command (the lock held) and reads its header: (object id, type, size)."""
        batch = self._batch
        if batch is None or batch.poll() is not None:
            batch = self._batch = subprocess.Popen(
                ["git", "-C", self.repository.path, "cat-file", "--batch-command", "-z"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=_git_env(),
            )
            if self._finalizer is not None:
                self._finalizer.detach()
            self._finalizer = weakref.finalize(self, _stop, [batch])
        try:
            _pipe(batch.stdin).write(f"{command} {name}\0".encode("utf-8", "surrogateescape"))
            _pipe(batch.stdin).flush()
            line = _pipe(batch.stdout).readline()
        except OSError as error:
            raise StorageError(f"git cat-file stopped while reading {self.object_uri(path)}: {error}") from None
        match = _HEADER.match(line)
        if match:
            return match.group(1).decode(), match.group(2).decode(), int(match.group(3))
        # "<name> missing": the name may hold newlines, so read the rest of that exact reply.
        expected = f"{name} missing\n".encode("utf-8", "surrogateescape")
        if expected.startswith(line) and len(line) < len(expected):
            line += _pipe(batch.stdout).read(len(expected) - len(line))
        if not line:
            raise StorageError(f"git cat-file stopped while reading {self.object_uri(path)}")
        raise StorageNotFoundError(f"no file {path!r} in {self.uri} (commit {self.commit[:12]})")


def git_uri(repository: str, revision: str = "", path: str = "") -> str:
    """The storage URI of ``path`` in ``repository`` at ``revision`` (see the module docstring)."""
    uri = "git+" + repository + (f"@{revision}" if revision else "")
    return uri + (f"#subdirectory={quote(path)}" if path else "")


def parse_git_uri(uri: str) -> tuple[str, str, str]:
    """(repository, revision or "", path) of a ``git+...`` URI."""
    if not uri.startswith("git+"):
        raise InvalidStorageUriError(f"{uri!r} is not a git URI (git+<repository>@<revision>#subdirectory=<path>)")
    body, _, fragment = uri[4:].partition("#")
    path = ""
    if fragment:
        key, _, value = fragment.partition("=")
        if key != "subdirectory":
            raise InvalidStorageUriError(f"{uri!r}: the fragment must be #subdirectory=<path>")
        path = unquote(value)
    # The revision follows the last "@" of the path part (an "@" in user@host is no revision).
    scheme_end = body.find("://")
    path_start = body.find("/", scheme_end + 3) if scheme_end >= 0 else 0
    at = body.rfind("@")
    if path_start >= 0 and at > path_start:
        return body[:at], body[at + 1 :], path
    return body, "", path


def _local_path(location: str) -> str | None:
    """The local path a repository location names, or None for a URL."""
    if "://" in location or re.match(r"^[\w.-]+@[\w.-]+:", location):  # a URL or scp-like user@host:path
        return None
    return os.path.abspath(os.path.expanduser(location))


def _records(stream: IO[bytes]) -> Iterator[bytes]:
    """NUL-terminated records from a pipe, read in large blocks."""
    pending = b""
    while block := stream.read(1 << 16):
        parts = (pending + block).split(b"\0")
        pending = parts.pop()
        yield from parts
    if pending:
        yield pending


def _git_error(stderr: str, location: str) -> StorageError:
    message = stderr.strip().splitlines()[-1] if stderr.strip() else "git failed"
    lowered = stderr.lower()
    if "operation too slow" in lowered:
        return StorageUnavailableError(
            f"git repository {location} went silent: nothing arrived within "
            f"{describe_timeout('read', StorageTimeouts.from_env())}: {message}"
        )
    if any(
        text in lowered
        for text in (
            "could not resolve host",
            "connection refused",
            "timed out",
            "unable to access",
            "could not read from remote",
            "network is unreachable",
        )
    ):
        if "not found" in lowered or "404" in lowered:
            return StorageNotFoundError(f"git repository {location} does not exist: {message}")
        return StorageUnavailableError(f"cannot reach git repository {location}: {message}")
    if any(
        text in lowered
        for text in ("authentication failed", "permission denied", "dubious ownership", "access denied", "403")
    ):
        return StorageAccessDeniedError(f"access denied to git repository {location}: {message}")
    if any(
        text in lowered
        for text in ("not a git repository", "does not appear to be a git repository", "does not exist", "not found")
    ):
        return StorageNotFoundError(f"git repository {location} does not exist or is not a repository: {message}")
    return StorageError(f"git failed on repository {location}: {message}")


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """An exclusive lock across processes on ``path`` (created if needed)."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _stop(holder: list[subprocess.Popen[bytes] | None]) -> None:
    """Ends a batch process (closing its input makes it exit)."""
    for process in holder:
        if process is not None:
            with contextlib.suppress(OSError):
                _pipe(process.stdin).close()
            process.kill()
            process.wait()
            _pipe(process.stdout).close()


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    """A pipe of a process started with ``subprocess.PIPE`` for it (typeshed types every pipe Optional)."""
    if stream is None:
        raise StorageError("git: a pipe asked for at the start of the process is missing")
    return stream
