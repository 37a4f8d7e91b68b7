"""The `thresher` command: `thresher up` runs the services, `thresher demo` shows the whole flow."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from thresher.transport import thresher_home


def _up(args: argparse.Namespace) -> int:
    from thresher.local import LocalServices

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with LocalServices(home=args.home, host=args.host, port=args.port) as services:
        print(f"Thresher is up (store in {services.home}). Point clients at it with:", flush=True)
        for key, value in services.environment().items():
            print(f"  export {key}={value}", flush=True)
        print("Ctrl-C stops it.", flush=True)
        stop.wait()
        print("stopping...", flush=True)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from thresher.demo import run_demo

    return run_demo(images=args.images, home=args.home)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thresher", description="Thresher: a data engine for ML datasets")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the metadata, scanner and flight services on this machine")
    up.add_argument("--home", default=thresher_home(), help="store folder (default $THRESHER_HOME or ~/.thresher)")
    up.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    up.add_argument("--port", type=int, default=7470,
                    help="metadata port; scanner and flight take the next two, the internal data port the "
                         "fifth after it (0 picks free ports)")
    up.set_defaults(run=_up)

    demo = commands.add_parser("demo", help="start the services on a throwaway store and run the whole flow")
    demo.add_argument("--images", type=int, default=48, help="how many synthetic images to index")
    demo.add_argument("--home", default=None, help="store folder (default: a temporary one)")
    demo.set_defaults(run=_demo)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
