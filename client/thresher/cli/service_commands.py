"""``thresher up``, ``thresher demo`` and ``thresher status``: run the services, show the flow, check them."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import TYPE_CHECKING

import click

from thresher.cli import console
from thresher.core.settings import Settings, unknown_variables
from thresher.core.transport import thresher_home

if TYPE_CHECKING:  # imported lazily at run time, to keep --help fast
    from thresher.gallery.server import GalleryServer
    from thresher.local_services import LocalServices

GALLERY_PORT_OFFSET = 3  # metadata, scanner, flight, then the gallery (the data port is + 5)


@click.command()
@click.option("--home", default=thresher_home, show_default="$THRESHER_HOME or ~/.thresher", help="store folder")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option(
    "--port",
    type=int,
    default=7470,
    show_default=True,
    help="metadata port; scanner and flight take the next two, the gallery the third after it, the internal data port the fifth "
    "after it (0 picks free ports)",
)
@click.option(
    "--gallery/--no-gallery",
    default=True,
    show_default=True,
    help="also serve the web gallery (port + 3; needs the gallery extra)",
)
def up(home: str, host: str, port: int, gallery: bool) -> None:
    """Run the metadata, scanner and flight services, and the web gallery, on this machine until Ctrl-C."""
    from thresher.local_services import LocalServices

    # Like each service on its own, refuse a THRESHER_* variable that names no setting: a typo is loud.
    unknown = unknown_variables(os.environ)
    if unknown:
        raise click.UsageError("; ".join(message for _, message in unknown))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with LocalServices(home=home, host=host, port=port) as services:
        print(f"Thresher is up (store in {services.home}). Point clients at it with:", flush=True)
        for key, value in services.environment().items():
            print(f"  export {key}={value}", flush=True)
        web = _start_gallery(services, host, port) if gallery else None
        if web is not None:
            print(f"Gallery on {web.url} (thresher ui opens it)", flush=True)
        print("Ctrl-C stops it.", flush=True)
        try:
            stop.wait()
        finally:
            print("stopping...", flush=True)
            if web is not None:
                web.stop()


def _start_gallery(services: LocalServices, host: str, port: int) -> GalleryServer | None:
    from thresher.core.errors import MissingExtraError
    from thresher.gallery import serve

    assert services.home is not None, "LocalServices.start() set it"
    try:
        return serve(
            host=host,
            port=port + GALLERY_PORT_OFFSET if port else 0,
            metadata_address=services.metadata_address,
            flight_address=services.flight_address,
            scanner_address=services.scanner_address,
            cache_dir=os.path.join(services.home, "gallery-cache"),
        )
    except MissingExtraError as error:
        console.warn(f"no gallery: {error}")
        return None


@click.command()
@click.option(
    "--url",
    default=lambda: Settings.from_env().gallery_url,
    help="the gallery's address (default $THRESHER_GALLERY_URL or what `thresher up` serves)",
)
@click.option("--no-browser", is_flag=True, help="only print the address")
def ui(url: str, no_browser: bool) -> None:
    """Open the web gallery that `thresher up` serves in a browser."""
    import webbrowser

    print(url, flush=True)
    if not no_browser and not webbrowser.open(url):
        console.note("no browser to open here: visit the address above")


@click.command()
@click.option(
    "--images", type=click.IntRange(min=1), default=48, show_default=True, help="how many synthetic images to index"
)
@click.option("--home", default=None, help="store folder (default: a temporary one)")
def demo(images: int, home: str | None) -> int:
    """Start the services on a throwaway store and run the whole flow, step by step."""
    from thresher.demo import run_demo

    return run_demo(images=images, home=home)


@click.command()
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=3.0, show_default=True, help="seconds to wait for each service"
)
@click.pass_context
def status(ctx: click.Context, timeout: float) -> int:
    """Show the service addresses and whether each one answers (exit 1 if one does not)."""
    import grpc
    from rich.table import Table

    from thresher.cli.app import connection

    conn = connection(ctx)
    table = Table("service", "address", "state")
    down = 0
    for name, address in (("metadata", conn.metadata_address), ("scanner", conn.scanner_address)):
        channel = conn._channel(address)  # noqa: SLF001 - the connection's own channel, TLS and all
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
            table.add_row(name, address, "[green]up[/]")
        except grpc.FutureTimeoutError:
            down += 1
            table.add_row(name, address, f"[red]not answering after {timeout:g} s[/]")
    try:
        conn.flight.wait_for_available(timeout=timeout)
        table.add_row("flight", conn.flight_address, "[green]up[/]")
    except Exception:  # noqa: BLE001 - pyarrow raises several kinds for "not there"
        down += 1
        table.add_row("flight", conn.flight_address, f"[red]not answering after {timeout:g} s[/]")
    console.out().print(table)
    if down:
        console.note("start them with: thresher up")
    return 1 if down else 0


COMMANDS = [up, ui, demo, status]
