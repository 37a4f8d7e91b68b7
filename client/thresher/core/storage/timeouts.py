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
import math
import os
from collections.abc import Iterator, Mapping

from thresher.core.storage.storage_errors import StorageConfigError, StorageUnavailableError

CONNECT_ENV = "THRESHER_STORAGE_CONNECT_TIMEOUT"
READ_ENV = "THRESHER_STORAGE_READ_TIMEOUT"
RETRIES_ENV = "THRESHER_STORAGE_RETRIES"
DEADLINE_ENV = "THRESHER_STORAGE_RETRY_DEADLINE"


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
        env = os.environ if environ is None else environ
        default = cls()
        return cls(connect=_seconds(env, CONNECT_ENV, default.connect), read=_seconds(env, READ_ENV, default.read),
                   retries=_count(env, RETRIES_ENV, default.retries),
                   deadline=_seconds(env, DEADLINE_ENV, default.deadline))


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise StorageConfigError(f"${name} must be a positive number of seconds, not {text!r}")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit():
        raise StorageConfigError(f"${name} must be a whole number of retries (0 or more), not {text!r}")
    return int(text)


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


def timed_out_error(service: str, endpoint: str, what: str, error: BaseException, timeouts: StorageTimeouts,
                    detail: str) -> StorageUnavailableError | None:
    """The error for an ``error`` that is, or wraps, a timeout of ``service``'s endpoint while it served
    ``what``, naming the timeout that ran out; None for any other error."""
    kind = timeout_kind(error)
    if kind is None:
        return None
    return StorageUnavailableError(f"the {service} endpoint {endpoint} timed out for {what}: no answer within "
                                   f"{describe_timeout(kind, timeouts)}: {detail}")


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
