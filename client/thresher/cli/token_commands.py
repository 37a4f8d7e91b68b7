"""``thresher token create``: a new random token and the line that grants it in the services' tokens config."""

from __future__ import annotations

import hashlib
import re
import secrets

import click

from thresher.cli import console

# What services/auth/tokens.py accepts: TOKEN=SUBJECT:NAMESPACE_PATTERN:read|write, entries split on , and newlines.
_FORBIDDEN = re.compile(r"[\s,:=]")


@click.group()
def token() -> None:
    """Bearer tokens for the services ($THRESHER_TOKENS / $THRESHER_TOKENS_FILE)."""


@token.command()
@click.option("--subject", required=True, help="who the token speaks for (recorded with every write)")
@click.option("--namespace", "pattern", default="*", show_default=True, help="namespace glob it may reach, e.g. team/*")
@click.option(
    "--mode", type=click.Choice(["read", "write"]), default="read", show_default=True, help="write includes read"
)
@click.option("--plain", is_flag=True, help="put the token itself in the config line instead of its sha256 digest")
def create(subject: str, pattern: str, mode: str, plain: bool) -> None:
    """Print a new random token (stdout) and the config line that grants it (stderr explains where).

    By default the line holds only the token's sha256 digest, so the config need not hold the secret.
    """
    for label, value in (("--subject", subject), ("--namespace", pattern)):
        if not value or _FORBIDDEN.search(value):
            raise click.BadParameter(f"{value!r} may not be empty or hold spaces, ',', ':' or '='", param_hint=label)
    new = "thr_" + secrets.token_urlsafe(32)
    key = new if plain else "sha256:" + hashlib.sha256(new.encode()).hexdigest()
    print(new)
    print(f"{key}={subject}:{pattern}:{mode}")
    console.note(
        "line 1 is the token (give it to the client as $THRESHER_TOKEN); add line 2 to the file named by "
        "$THRESHER_TOKENS_FILE (or $THRESHER_TOKENS) of every service, then restart them"
    )


COMMANDS = [token]
