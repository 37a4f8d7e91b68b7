"""Bearer tokens and what each may do: a subject, and read or write access to namespace patterns.

Configuration is text, from ``$THRESHER_TOKENS`` or the file named by ``$THRESHER_TOKENS_FILE``:
entries separated by commas or new lines, each ``TOKEN=SUBJECT:PATTERN:MODE``. PATTERN is a
namespace glob (``team/*``, ``*``), MODE is ``read`` or ``write`` (write includes read). A token may
appear in several entries to hold several grants. TOKEN may be given as ``sha256:<hex digest>`` so
that the configuration need not hold the secret itself. Lines starting with ``#`` are comments.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

from thresher.core.settings import Settings, env_name

TOKENS_ENV = env_name("tokens")
TOKENS_FILE_ENV = env_name("tokens_file")
_MODES = ("read", "write")


class TokenConfigError(ValueError):
    """The token configuration cannot be read; the message names the entry."""


@dataclass(frozen=True)
class Grant:
    pattern: str
    write: bool

    def covers(self, namespace: str, write: bool) -> bool:
        return (self.write or not write) and fnmatch.fnmatchcase(namespace, self.pattern)


@dataclass(frozen=True)
class Identity:
    """Who a token speaks for, and where."""

    subject: str
    grants: tuple[Grant, ...]

    def may(self, namespace: str, write: bool = False) -> bool:
        return any(grant.covers(namespace, write) for grant in self.grants)

    def may_everywhere(self, write: bool = False) -> bool:
        """Whether a grant covers every namespace (``*``), as calls that name none require."""
        return any(grant.pattern == "*" and (grant.write or not write) for grant in self.grants)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenTable:
    """The configured tokens, kept as digests; empty when auth is not configured."""

    def __init__(self, identities: Mapping[str, Identity] | None = None) -> None:
        self._identities = dict(identities or {})

    def __bool__(self) -> bool:
        return bool(self._identities)

    def __len__(self) -> int:
        return len(self._identities)

    def authenticate(self, token: str | None) -> Identity | None:
        """The identity of ``token``, or None for a missing or unknown one."""
        if not token:
            return None
        digest = _digest(token)
        for known, identity in self._identities.items():
            if hmac.compare_digest(known, digest):
                return identity
        return None

    @classmethod
    def parse(cls, text: str) -> TokenTable:
        subjects: dict[str, str] = {}
        grants: dict[str, list[Grant]] = {}
        for raw in text.replace(",", "\n").splitlines():
            entry = raw.strip()
            if not entry or entry.startswith("#"):
                continue
            token, separator, rest = entry.partition("=")
            parts = rest.split(":")
            if not separator or not token or len(parts) != 3 or not all(parts) or parts[2] not in _MODES:
                shown = token[:4] + "..." if token else "(empty)"
                raise TokenConfigError(f"token entry for {shown} must read TOKEN=SUBJECT:NAMESPACE_PATTERN:read|write")
            digest = token.removeprefix("sha256:").lower() if token.startswith("sha256:") else _digest(token)
            subject, pattern, mode = parts
            if subjects.setdefault(digest, subject) != subject:
                raise TokenConfigError(f"one token is given two subjects: {subjects[digest]!r} and {subject!r}")
            grants.setdefault(digest, []).append(Grant(pattern, mode == "write"))
        return cls({digest: Identity(subjects[digest], tuple(found)) for digest, found in grants.items()})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> TokenTable:
        """``$THRESHER_TOKENS``, then the file at ``$THRESHER_TOKENS_FILE``; empty when neither is set."""
        return cls.from_settings(Settings.from_env(environ))

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenTable:
        """The tokens of ``settings.tokens``, then those of the file ``settings.tokens_file``."""
        text, path = settings.tokens, settings.tokens_file
        if path:
            try:
                with open(path, encoding="utf-8") as handle:
                    text += "\n" + handle.read()
            except OSError as error:
                raise TokenConfigError(f"cannot read {TOKENS_FILE_ENV}={path!r}: {error}") from None
        return cls.parse(text)


def bearer_token(header: str | bytes | None) -> str | None:
    """The token of an ``authorization: Bearer <token>`` header value, or None."""
    if isinstance(header, bytes):
        header = header.decode("utf-8", "replace")
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
