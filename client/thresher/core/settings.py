"""Every setting Thresher reads from its environment, declared once, in one typed object.

A setting is a field of :class:`Settings`. Its environment variable is ``THRESHER_`` and the field's name
in capitals; its command-line flag (in a service's ``--help``) is the name with dashes. One naming rule
holds: a setting a service binds to ends in ``_listen``, one a caller connects to ends in ``_address``.
A variable renamed to follow the rule is still read under its old name for one release, with a
warning naming the new one.

``Settings.from_env()`` parses and checks every setting (a bad value raises :class:`SettingsError`
naming the variable and the value); with ``strict=True``, as services start, a ``THRESHER_*``
variable that names no setting is refused, with the closest known name suggested. The settings table in
``docs/operations.md`` (``scripts/settings_table.py``), the services' ``--help`` and ``thresher config``
are all generated from the declarations below.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any, Literal

PREFIX = "THRESHER_"
Kind = Literal["str", "int", "float", "bool", "path", "list", "secret"]
# Who reads settings. "healthcheck" is the container health check; "compose" marks variables only
# compose.yaml reads (kept known so that they never count as typos).
PARTS = ("metadata", "scanner", "flight", "client", "cli", "gallery", "healthcheck", "compose")
SERVICES = ("metadata", "scanner", "flight")

_CALLERS = ("client", "cli", "gallery")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_MASK = "********"
_METAVARS = {
    "str": "TEXT",
    "secret": "TEXT",
    "int": "N",
    "float": "NUMBER",
    "bool": "yes|no",
    "path": "PATH",
    "list": "A,B,...",
}


class SettingsError(ValueError):
    """A setting that cannot be used (a bad value, an unknown variable); the message names it."""

    def __init__(self, message: str, variable: str = "") -> None:
        super().__init__(message)
        self.variable = variable


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting's declaration: its field name, type, default, meaning and readers."""

    name: str
    kind: Kind
    default: Any
    doc: str
    parts: tuple[str, ...]
    # How the default reads in the docs when it is computed or empty ("<home>/staging", "none").
    default_doc: str = ""
    # int: the smallest value allowed; float: ``positive`` asks for a finite number above 0.
    minimum: int | None = None
    positive: bool = False
    # Old variable names still read (with a warning) when the new one is unset.
    deprecated: tuple[str, ...] = ()
    # Older flags a service still accepts for this setting (``--address`` for ``--metadata-listen``).
    flag_aliases: tuple[str, ...] = ()
    # Whether services take it as a flag; secrets do not (a process listing would show them) unless
    # they did before this module (``--postgres-url``).
    command_line: bool | None = None

    @property
    def has_flag(self) -> bool:
        return not self.secret if self.command_line is None else self.command_line

    @property
    def env(self) -> str:
        """The environment variable: ``THRESHER_`` and the name in capitals."""
        return PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        """The command-line flag of the services that read it."""
        return "--" + self.name.replace("_", "-")

    @property
    def secret(self) -> bool:
        return self.kind == "secret"

    def default_value(self) -> Any:
        if self.kind == "path" and self.default:
            return os.path.expanduser(self.default)
        return self.default

    def describe_default(self) -> str:
        """The default as the docs and ``--help`` show it."""
        if self.default_doc:
            return self.default_doc
        if self.kind == "list":
            return ",".join(self.default) if self.default else "none"
        if self.kind == "bool":
            return "yes" if self.default else "no"
        if self.default in ("", None):
            return "none"
        return str(self.default)

    def parse(self, text: str, source: str) -> Any:
        """``text`` as this setting's type; SettingsError naming ``source`` ($VARIABLE or --flag) and the text."""
        if self.kind in ("str", "secret"):
            return text
        if self.kind == "path":
            return os.path.expanduser(text.strip())
        if self.kind == "list":
            return tuple(item.strip() for item in text.split(",") if item.strip())
        stripped = text.strip().lower()
        if self.kind == "bool":
            if stripped in _TRUE or stripped in _FALSE:
                return stripped in _TRUE
            raise SettingsError(f"{source} must be one of {'/'.join(_TRUE + _FALSE)}, not {text!r}", self.env)
        if self.kind == "int":
            bound = "" if self.minimum is None else f", {self.minimum} or more"
            try:
                number = int(stripped)
            except ValueError:
                raise SettingsError(f"{source} must be a whole number{bound}, not {text!r}", self.env) from None
            if self.minimum is not None and number < self.minimum:
                raise SettingsError(f"{source} must be a whole number{bound}, not {text!r}", self.env)
            return number
        try:
            value = float(stripped)
        except ValueError:
            value = math.nan
        if math.isnan(value) or (self.positive and not (value > 0 and math.isfinite(value))):
            what = "a positive number" if self.positive else "a number"
            raise SettingsError(f"{source} must be {what}, not {text!r}", self.env)
        return value

    def show(self, value: Any) -> str:
        """``value`` for people to read: secrets masked, lists comma-joined."""
        if self.secret:
            return _MASK if value else ""
        if self.kind == "list":
            return ",".join(value)
        if self.kind == "bool":
            return "yes" if value else "no"
        return str(value)


def _declare(kind: Kind, default: Any, doc: str, parts: Iterable[str], **extra: Any) -> Any:
    """A ``Settings`` field with its declaration in the field's metadata."""
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}")
    declaration = dict(kind=kind, default=default, doc=doc, parts=tuple(parts), **extra)
    return dataclasses.field(
        default=default, metadata={"thresher": declaration}, repr=False
    )  # Settings.__repr__ masks secrets


@dataclasses.dataclass(frozen=True)
class Settings:
    """The effective settings of one process (see the module docstring); build it with ``from_env``."""

    # Where things are kept.
    home: str = _declare(
        "path", "~/.thresher", "the embedded DuckDB store, the default blob folder and caches", (*SERVICES, *_CALLERS)
    )
    postgres_url: str = _declare(
        "secret",
        "",
        "`postgresql://user:password@host:port/db`: use the PostgreSQL store instead of DuckDB under the home folder",
        ("metadata",),
        command_line=True,
    )
    blob_store: str = _declare(
        "str",
        "",
        "where blobs are kept: a folder, `s3://bucket/prefix` or `gs://bucket/prefix`",
        ("metadata", "flight", "client"),
        default_doc="`<home>/blobs`",
    )
    staging_dir: str = _declare(
        "path",
        "",
        "where staged upload blocks (Ray uploads) wait for their commit; metadata replicas must share it",
        ("metadata",),
        default_doc="`<home>/staging`",
    )
    # Where services bind.
    metadata_listen: str = _declare(
        "str",
        "127.0.0.1:7470",
        "the address the metadata service listens on",
        ("metadata",),
        flag_aliases=("--address",),
    )
    metadata_data_listen: str = _declare(
        "str",
        "",
        "also serve query results over Arrow Flight here (the internal data port the flight service reads)",
        ("metadata",),
        flag_aliases=("--data-address",),
    )
    scanner_listen: str = _declare(
        "str",
        "127.0.0.1:7471",
        "the address the scanner service listens on",
        ("scanner",),
        deprecated=("THRESHER_SCANNER_ADDRESS",),
        flag_aliases=("--address",),
    )
    flight_listen: str = _declare(
        "str",
        "127.0.0.1:7472",
        "the address the flight service listens on",
        ("flight",),
        deprecated=("THRESHER_FLIGHT_ADDRESS",),
        flag_aliases=("--address",),
    )
    # Where callers connect.
    metadata_address: str = _declare(
        "str",
        "127.0.0.1:7470",
        "where the metadata service is (`dns:///name:port` spreads calls over replicas)",
        ("scanner", "flight", *_CALLERS),
    )
    scanner_address: str = _declare("str", "127.0.0.1:7471", "where the scanner service is", _CALLERS)
    flight_address: str = _declare("str", "127.0.0.1:7472", "where the flight service is", _CALLERS)
    metadata_data_address: str = _declare(
        "str", "", "where the metadata service's data port is (unset: query results come over gRPC)", ("flight",)
    )
    # The flight service.
    flight_advertise_host: str = _declare(
        "str",
        "",
        "the host name put in Flight endpoints, one clients can reach",
        ("flight",),
        default_doc="the bind host",
        flag_aliases=("--advertise-host",),
    )
    flight_peers: tuple[str, ...] = _declare(
        "list",
        (),
        "the other flight replicas (`host:port`, comma-separated), listed as further locations of every endpoint",
        ("flight",),
    )
    flight_partition_rows: int = _declare(
        "int", 1_000_000, "rows per partition of a large query result (0: never split)", ("flight",), minimum=0
    )
    # Tokens and TLS.
    tokens: str = _declare(
        "secret",
        "",
        "the tokens callers may present: `TOKEN=SUBJECT:NAMESPACE_PATTERN:MODE` (MODE "
        "`read` or `write`), comma- or line-separated",
        SERVICES,
    )
    tokens_file: str = _declare("path", "", "a file of further tokens, in the same form as `THRESHER_TOKENS`", SERVICES)
    service_token: str = _declare(
        "secret", "", "the token a service presents when it acts for no caller", ("scanner", "flight")
    )
    tls_cert: str = _declare("path", "", "PEM certificate chain: serve over TLS (with `THRESHER_TLS_KEY`)", SERVICES)
    tls_key: str = _declare("path", "", "PEM private key of `THRESHER_TLS_CERT`", SERVICES)
    tls_root_certs: str = _declare(
        "path",
        "",
        "PEM roots that verify the services called; turns TLS on",
        ("scanner", "flight", *_CALLERS, "healthcheck"),
    )
    tls_server_name: str = _declare(
        "str",
        "",
        "the host name the called services' certificates carry, when the "
        "address does not say it (a multi-address target, an IP)",
        ("scanner", "flight"),
    )
    token: str = _declare("secret", "", "the bearer token the client sends", ("client", "cli"))
    # Object stores.
    storage_connect_timeout: float = _declare(
        "float", 10.0, "seconds to open a connection to S3/GCS", (*SERVICES, "client"), positive=True
    )
    storage_read_timeout: float = _declare(
        "float",
        60.0,
        "seconds to wait for the next bytes of an S3/GCS answer (also git over HTTP(S))",
        (*SERVICES, "client"),
        positive=True,
    )
    storage_retries: int = _declare(
        "int", 3, "retries of a failed S3/GCS call (0: one attempt)", (*SERVICES, "client"), minimum=0
    )
    storage_retry_deadline: float = _declare(
        "float", 60.0, "GCS only: seconds after which a call stops retrying", (*SERVICES, "client"), positive=True
    )
    s3_endpoint_url: str = _declare(
        "str", "", "another S3 endpoint (MinIO, a test server)", (*SERVICES, "client"), default_doc="boto3's own"
    )
    # The client and the command line.
    download_dir: str = _declare("path", "~/thresher", "the root of downloads and of the blob cache", ("client",))
    direct_read_rows: int = _declare(
        "int",
        10_000,
        "a query known to answer at most this many rows (a lookup, `head(n)`, a small limit) is read in "
        "one call to the metadata service instead of through Flight (0: every query through Flight)",
        ("client",),
        minimum=0,
    )
    libssl11_dir: str = _declare(
        "path", "", "a folder holding libssl.so.1.1, for FiftyOne's bundled MongoDB", ("client",)
    )
    debug: bool = _declare("bool", False, "the command line shows tracebacks of unexpected errors", ("cli",))
    gallery_url: str = _declare("str", "http://127.0.0.1:7473/", "the gallery `thresher ui` opens", ("cli",))
    # Read by compose.yaml only.
    public_host: str = _declare(
        "str",
        "localhost",
        "compose: the host name clients outside the compose network use, advertised by the flight replicas",
        ("compose",),
    )
    tls_dir: str = _declare("path", "./tls", "compose: the folder of certificates mounted at /tls", ("compose",))
    data_dir: str = _declare(
        "path", "./data", "compose: the folder of local datasources mounted at /datasets", ("compose",)
    )

    # Where each setting's value came from: "default", "$VARIABLE", "--flag" or "argument".
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, strict: bool = False) -> Settings:
        """The settings of ``environ`` (default ``os.environ``); an empty variable counts as unset.

        ``strict`` refuses a ``THRESHER_*`` variable that names no setting (what services do as they start).
        """
        env = os.environ if environ is None else environ
        if strict:
            unknown = unknown_variables(env)
            if unknown:
                raise SettingsError("; ".join(message for _, message in unknown), unknown[0][0])
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for setting in SETTINGS:
            values[setting.name], sources[setting.name] = _lookup(setting, env)
        return cls(**values, sources=sources)

    @staticmethod
    def read(name: str, environ: Mapping[str, str] | None = None) -> Any:
        """The one setting ``name`` of ``environ`` (default ``os.environ``), parsed and checked like
        ``from_env`` does; for code that needs a single value often (a path per blob, timeouts per
        storage opened), at a fraction of ``from_env``'s cost, and unaffected by other settings."""
        return _lookup(setting_named(name), os.environ if environ is None else environ)[0]

    def overlay(self, texts: Mapping[str, str | None], source: str = "flag") -> Settings:
        """These settings with ``texts`` (field name -> text, None: leave as is) parsed over them, e.g.
        command-line flags; a bad value raises SettingsError naming the flag."""
        values: dict[str, Any] = {}
        sources = dict(self.sources)
        for name, text in texts.items():
            if text is None:
                continue
            setting = setting_named(name)
            values[name] = setting.parse(text, setting.flag) if text.strip() else setting.default_value()
            sources[name] = setting.flag if source == "flag" else source
        return dataclasses.replace(self, **values, sources=sources)

    def replace(self, **values: Any) -> Settings:
        """These settings with typed ``values`` in place (what a caller passes in code)."""
        for name in values:
            setting_named(name)
        return dataclasses.replace(self, **values, sources={**self.sources, **{name: "argument" for name in values}})

    def source(self, name: str) -> str:
        """Where setting ``name`` came from ("default" when the object was built in code)."""
        return self.sources.get(name, "default")

    def deprecations(self, part: str) -> list[str]:
        """Warnings for the settings ``part`` reads that were found under an old name."""
        messages = []
        for setting in settings_of(part):
            source = self.source(setting.name)
            if source.startswith("$") and source[1:] in setting.deprecated:
                messages.append(
                    f"{source[1:]} is deprecated for what the {part} service binds to and will stop "
                    f"working in the next release: set {setting.env} instead"
                )
        return messages

    def effective(self, part: str | None = None) -> list[tuple[Setting, str, str]]:
        """``(setting, value as shown, source)`` for every setting (or those ``part`` reads), secrets masked."""
        chosen = SETTINGS if part is None else settings_of(part)
        return [(setting, setting.show(getattr(self, setting.name)), self.source(setting.name)) for setting in chosen]

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{setting.name}={_MASK if setting.secret and value else value!r}"
            for setting in SETTINGS
            for value in [getattr(self, setting.name)]
        )
        return f"Settings({shown})"


SETTINGS: tuple[Setting, ...] = tuple(
    Setting(name=field.name, **field.metadata["thresher"])
    for field in dataclasses.fields(Settings)
    if "thresher" in field.metadata
)
_BY_NAME = {setting.name: setting for setting in SETTINGS}
_KNOWN_VARIABLES = {setting.env for setting in SETTINGS} | {old for setting in SETTINGS for old in setting.deprecated}
_KNOWN_SUFFIXES = sorted(variable[len(PREFIX) :] for variable in _KNOWN_VARIABLES)


def _lookup(setting: Setting, env: Mapping[str, str]) -> tuple[Any, str]:
    """``setting``'s value in ``env`` and where it came from: its variable, an old name, or the default."""
    for variable in (setting.env, *setting.deprecated):
        text = env.get(variable, "")
        if text.strip():
            return setting.parse(text, "$" + variable), "$" + variable
    return setting.default_value(), "default"


def setting_named(name: str) -> Setting:
    """The declaration of field ``name``; KeyError naming it when there is none."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no setting named {name!r}") from None


def env_name(name: str) -> str:
    """The environment variable of setting ``name`` (``"home"`` -> ``"THRESHER_HOME"``)."""
    return setting_named(name).env


def settings_of(part: str) -> tuple[Setting, ...]:
    """The settings ``part`` (one of PARTS) reads."""
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; expected one of {', '.join(PARTS)}")
    return tuple(setting for setting in SETTINGS if part in setting.parts)


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(variable, message)`` for each ``THRESHER_*`` variable in ``environ`` that names no setting; the
    message suggests the closest known name."""
    found = []
    for variable in sorted(environ):
        if not variable.startswith(PREFIX) or variable in _KNOWN_VARIABLES:
            continue
        # Compared without the shared prefix, which would make every name look alike.
        close = difflib.get_close_matches(variable[len(PREFIX) :], _KNOWN_SUFFIXES, n=1, cutoff=0.6)
        hint = f"; did you mean {PREFIX}{close[0]}?" if close else " (`thresher config` lists the known settings)"
        found.append((variable, f"unknown setting {variable} in the environment{hint}"))
    return found


def add_arguments(parser: argparse.ArgumentParser, part: str) -> None:
    """Adds a flag for each setting ``part`` reads (secrets excepted: they stay out of process listings),
    and lists every setting's variable in the help, so ``--help`` is generated from the declarations."""
    secrets = []
    for setting in settings_of(part):
        if not setting.has_flag:
            secrets.append(setting)
            continue
        parser.add_argument(
            setting.flag,
            *setting.flag_aliases,
            dest=setting.name,
            default=None,
            metavar=_METAVARS[setting.kind],
            help=f"{_plain(setting.doc)} (${setting.env}; default: {_plain(setting.describe_default())})",
        )
    if secrets:
        lines = [f"  ${setting.env}: {_plain(setting.doc)}" for setting in secrets]
        parser.epilog = "\n".join(["secrets, read from the environment only:", *lines])
        parser.formatter_class = argparse.RawDescriptionHelpFormatter


def from_arguments(
    parser: argparse.ArgumentParser, args: argparse.Namespace, part: str, environ: Mapping[str, str] | None = None
) -> Settings:
    """The environment's settings (strictly: an unknown variable is refused) with ``part``'s flags over
    them; a bad or unknown setting ends the program through ``parser.error`` (exit status 2). Given no
    ``environ``, flags are also written to ``os.environ``, for the code that reads one setting alone."""
    texts = {setting.name: getattr(args, setting.name, None) for setting in settings_of(part)}
    try:
        settings = Settings.from_env(environ, strict=True).overlay(texts)
    except SettingsError as error:
        parser.error(str(error))
    if environ is None:
        # Code deep in a service (the staging folder, storage timeouts) reads single settings from the
        # process environment; a flag goes there too, so every part of the process sees one value.
        for name, text in texts.items():
            if text is not None:
                os.environ[setting_named(name).env] = text
    return settings


def settings_table() -> str:
    """The Markdown table of every setting, as ``docs/operations.md`` holds it."""
    rows = ["| variable | type | default | read by | meaning |", "|---|---|---|---|---|"]
    for setting in SETTINGS:
        default = setting.describe_default()
        default = (
            default
            if default.startswith("`") or default in ("none", "the bind host", "boto3's own")
            else f"`{default}`"
        )
        meaning = setting.doc
        if setting.deprecated:
            old = ", ".join(f"`{name}`" for name in setting.deprecated)
            meaning += f" (formerly {old}, still read with a warning until the next release)"
        rows.append(f"| `{setting.env}` | {setting.kind} | {default} | {', '.join(setting.parts)} | {meaning} |")
    return "\n".join(rows) + "\n"


def _plain(text: str) -> str:
    """Docs text for a terminal: no Markdown backticks, and argparse's % escaped."""
    return text.replace("`", "").replace("%", "%%")
