"""How long S3 and GCS calls wait and how often they retry: one setting for both, from the environment.

=====================================  =======  ==============================================================
variable                               default  meaning
=====================================  =======  ==============================================================
``THRESHER_STORAGE_CONNECT_TIMEOUT``   10       seconds to open a connection to the endpoint
``THRESHER_STORAGE_READ_TIMEOUT``      60       seconds to wait for the next bytes of an answer (a silent
                                                endpoint fails after this long, a slow one that keeps
                                                sending never does); also git over HTTP(S)
``THRESHER_STORAGE_RETRIES``           3        retries of a failed call (timeouts, dropped connections,
                                                HTTP 429/5xx); 0: one attempt
``THRESHER_STORAGE_RETRY_DEADLINE``    60       GCS only: seconds after which a call stops retrying
=====================================  =======  ==============================================================

A storage reads them when it is opened (``open_storage``), so services started in-process or as child
processes pick up what their environment says. A timeout surfaces as ``StorageUnavailableError``
naming the endpoint, the object and the timeout that ran out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping

from thresher.core.settings import Settings, SettingsError, env_name
from thresher.core.storage.storage_errors import StorageConfigError, StorageUnavailableError

_FIELDS = ("storage_connect_timeout", "storage_read_timeout", "storage_retries", "storage_retry_deadline")
CONNECT_ENV, READ_ENV, RETRIES_ENV, DEADLINE_ENV = (env_name(name) for name in _FIELDS)


@dataclasses.dataclass(frozen=True, slots=True)
class StorageTimeouts:
    """Timeouts and retries of every S3 and GCS call (see the module docstring)."""

    connect: float = 10.0
    read: float = 60.0
    retries: int = 3
    deadline: float = 60.0

    @property
    def attempts(self) -> int:
        """Attempts per call, the first included."""
        return self.retries + 1

    @property
    def pair(self) -> tuple[float, float]:
        """``(connect, read)``, as ``requests`` (and so google-cloud-storage) takes a timeout."""
        return (self.connect, self.read)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StorageTimeouts:
        """The settings in ``environ`` (default ``os.environ``); StorageConfigError naming a bad one."""
        try:
            # One setting at a time: a storage opens often, and only these four concern it.
            connect, read, retries, deadline = (Settings.read(name, environ) for name in _FIELDS)
        except SettingsError as error:
            raise StorageConfigError(str(error)) from None
        return cls(connect=connect, read=read, retries=retries, deadline=deadline)

    @classmethod
    def from_settings(cls, settings: Settings) -> StorageTimeouts:
        """The storage settings of ``settings``."""
        return cls(
            connect=settings.storage_connect_timeout,
            read=settings.storage_read_timeout,
            retries=settings.storage_retries,
            deadline=settings.storage_retry_deadline,
        )


def timeout_kind(error: BaseException) -> str | None:
    """``"connect"`` or ``"read"`` when ``error`` is, or wraps, a timeout; None otherwise.

    boto3, requests, urllib3 and the socket layer each have their own timeout classes and wrap one
    another's, so the causes are walked and the classes recognised by name rather than imported.
    """
    for cause in _causes(error):
        names = {cls.__name__ for cls in type(cause).__mro__}
        if "NewConnectionError" in names:  # urllib3 files a refused connection under ConnectTimeoutError
            continue
        if names & {"ConnectTimeout", "ConnectTimeoutError"}:
            return "connect"
        if names & {"ReadTimeout", "ReadTimeoutError", "TimeoutError", "Timeout"}:
            return "read"
    return None


def describe_timeout(kind: str, timeouts: StorageTimeouts) -> str:
    """``"the 1 s read timeout ($THRESHER_STORAGE_READ_TIMEOUT)"`` and its like, for error messages."""
    seconds, name = (timeouts.connect, CONNECT_ENV) if kind == "connect" else (timeouts.read, READ_ENV)
    return f"the {seconds:g} s {kind} timeout (${name})"


def timed_out_error(
    service: str, endpoint: str, what: str, error: BaseException, timeouts: StorageTimeouts, detail: str
) -> StorageUnavailableError | None:
    """The error for an ``error`` that is, or wraps, a timeout of ``service``'s endpoint while it served
    ``what``, naming the timeout that ran out; None for any other error."""
    kind = timeout_kind(error)
    if kind is None:
        return None
    return StorageUnavailableError(
        f"the {service} endpoint {endpoint} timed out for {what}: no answer within "
        f"{describe_timeout(kind, timeouts)}: {detail}"
    )


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it wraps: causes, contexts, urllib3's ``reason``, exceptions among its args."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending += [item for item in wrapped if isinstance(item, BaseException)]
