"""The command group, its connection options, and the one place user errors become one line and exit 2."""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING, TextIO

import click

from thresher.cli import console
from thresher.core.settings import Settings, SettingsError, env_name

if TYPE_CHECKING:  # imported lazily at run time, to keep --help fast
    from thresher.connection import Connection

# Exit statuses: 0 done, 1 an unexpected failure (a bug, or a service down for `status`), 2 a user error.
USER_ERROR = 2
UNEXPECTED = 1
DEBUG_ENV = env_name("debug")

# Click 8.2+ raises this for a bare group invocation; older Click prints the help and exits by itself.
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="thresher", prog_name="thresher")
# Unset options fall back to the environment through thresher.core.settings (in Connection).
@click.option(
    "--metadata-address",
    metavar="HOST:PORT",
    help="metadata service (default $THRESHER_METADATA_ADDRESS or 127.0.0.1:7470)",
)
@click.option(
    "--scanner-address",
    metavar="HOST:PORT",
    help="scanner service (default $THRESHER_SCANNER_ADDRESS or 127.0.0.1:7471)",
)
@click.option(
    "--flight-address", metavar="HOST:PORT", help="flight service (default $THRESHER_FLIGHT_ADDRESS or 127.0.0.1:7472)"
)
@click.option("--token", metavar="TOKEN", help="bearer token (default $THRESHER_TOKEN)")
@click.pass_context
def cli(
    ctx: click.Context,
    metadata_address: str | None,
    scanner_address: str | None,
    flight_address: str | None,
    token: str | None,
) -> None:
    """Thresher: an open, self-hosted data engine for ML datasets.

    NAME (in scan, query, export, download) is OWNER/NAMESPACE/DATASOURCE, e.g. team/pets/images; a
    saved dataset of that namespace is found by the same name when no datasource has it, or always
    with the prefix dataset:, e.g. dataset:team/pets/cats.
    """
    ctx.obj = {"metadata": metadata_address, "scanner": scanner_address, "flight": flight_address, "token": token}


def connection(ctx: click.Context) -> Connection:
    """The connection the group's options describe."""
    from thresher.connection import Connection

    options = ctx.find_root().obj
    if "connection" not in options:
        # Passed explicitly to every call rather than made the process default: main() may run in-process.
        options["connection"] = Connection(
            options.get("metadata"), options.get("flight"), options.get("scanner"), token=options.get("token")
        )
        ctx.find_root().call_on_close(options["connection"].close)
    found: Connection = options["connection"]
    return found


def _register() -> None:
    from thresher.cli import config_commands, data_commands, service_commands, token_commands

    for module in (service_commands, data_commands, token_commands, config_commands):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            result = cli.main(args, prog_name="thresher", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.exceptions.Abort:
        console.error("interrupted")
        return 130
    except _NO_ARGS_IS_HELP as error:  # bare `thresher`: the help itself, not an error line
        console.err().print(error.format_message(), markup=False, highlight=False)
        return USER_ERROR
    except click.UsageError as error:
        hint = f" (see '{error.ctx.command_path} --help')" if error.ctx is not None else ""
        console.error(f"{error.format_message()}{hint}")
        return USER_ERROR
    except click.ClickException as error:
        console.error(error.format_message())
        return USER_ERROR
    except KeyboardInterrupt:
        console.error("interrupted")
        return 130
    except BaseException as error:  # noqa: BLE001 - the one place that turns errors into exit statuses
        if isinstance(error, SystemExit):
            raise
        if _debugging():
            raise
        if is_user_error(error):
            console.error(_describe(error))
            return USER_ERROR
        console.error(f"unexpected {type(error).__name__}: {_describe(error)} (set {DEBUG_ENV}=1 for the traceback)")
        return UNEXPECTED


def _debugging() -> bool:
    """Whether $THRESHER_DEBUG asks for tracebacks; a bad value counts as no (the error at hand may be it)."""
    try:
        return bool(Settings.read("debug"))
    except SettingsError:
        return False


def is_user_error(error: BaseException) -> bool:
    """Errors a user causes or can fix: Thresher's own, bad values, files, timeouts, unreachable services."""
    from thresher.core.errors import ThresherError

    return isinstance(error, ThresherError | ValueError | LookupError | OSError | TimeoutError)


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror and error.filename:
        text = f"{error.strerror}: {error.filename}"
    else:
        text = str(error) or type(error).__name__
        if isinstance(error, KeyError) and len(text) >= 2 and text[0] == text[-1] == "'":
            text = text[1:-1]
    return " ".join(text.split())  # one line, whatever the message held


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    console.warn(" ".join(str(message).split()))
