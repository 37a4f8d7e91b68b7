"""Runs compose.yaml's services as local processes, for machines without a Docker engine.

Each service built from this repository runs its compose ``command`` with the environment compose
would give its container, with three translations a single host needs: every container port gets a
free loopback port (a published port is that same local port), host names of services and network
aliases become those loopback addresses (an alias shared by replicas becomes a gRPC ``ipv4:`` list,
as DNS would give both), and a named volume becomes a local folder shared by the services that
mount it (a bind mount, its host folder): a setting naming a path in a mount names that folder. Readiness is the service's own compose health check, run until it passes. Services that
are only images stand in locally: ``postgres`` as a throwaway cluster from Debian's package, ``s3``
as moto's server where moto is installed (otherwise it is left out).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import yaml

from .postgres import LocalPostgres, free_port

HEALTH_DEADLINE_SECONDS = 120.0
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")
_ADDRESS = re.compile(r"(?P<dns>dns:///)?(?P<host>[A-Za-z0-9_.\-]+):(?P<port>\d+)")
_OWN_HOSTS = ("0.0.0.0", "127.0.0.1", "localhost")
# The ports the image-only services listen on, published or not.
_STANDIN_PORTS = {"postgres": 5432, "s3": 9000}


def postgres_settings(command: list) -> dict[str, str]:
    """The ``-c name=value`` (or ``-cname=value``) settings of a ``postgres`` command line, by name."""
    settings, words = {}, [str(word) for word in command]
    for index, word in enumerate(words):
        if word == "-c" and index + 1 < len(words):
            text = words[index + 1]
        elif word.startswith("-c") and "=" in word:
            text = word[2:]
        else:
            continue
        key, equals, value = text.partition("=")
        if not equals:
            raise ComposeError(f"postgres setting {text!r} is not name=value")
        settings[key.strip()] = value.strip()
    return settings


class ComposeError(RuntimeError):
    """compose.yaml cannot be run as processes; the message says which service and why."""


def interpolate(value: Any, variables: Mapping[str, str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` in every string of ``value``."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        found = variables.get(name, "")
        if found:
            return found
        if op == ":?":
            raise ComposeError(f"variable {name} is required: {arg}")
        return arg if op == ":-" else ""

    return _VARIABLE.sub(substitute, value)


def load_compose(path: str, variables: Mapping[str, str]) -> dict:
    with open(path, encoding="utf-8") as handle:
        return interpolate(yaml.safe_load(handle), variables)


def _container_port(mapping: str) -> tuple[int, int]:
    """(published host port, container port) of a ``HOST:CONTAINER`` port mapping."""
    host, _, container = str(mapping).rpartition(":")
    return int(host or container), int(container)


class ComposeProcesses:
    """compose.yaml's services as processes; a context manager."""

    def __init__(self, compose_path: str, variables: Mapping[str, str], workdir: str | None = None) -> None:
        self.spec = load_compose(compose_path, variables)
        self.services: dict[str, dict] = self.spec["services"]
        self._scratch = None if workdir else tempfile.TemporaryDirectory(prefix="thresher-compose-")
        self.workdir = workdir or self._scratch.name
        # Published ports and the ones exposed inside the compose network only (``expose``) alike.
        self.ports: dict[str, dict[int, int]] = {
            name: {_container_port(p)[1]: free_port() for p in [*service.get("ports", []), *service.get("expose", [])]}
            for name, service in self.services.items()
        }
        for name, port in _STANDIN_PORTS.items():
            if name in self.ports:
                self.ports[name].setdefault(port, free_port())
        self.aliases: dict[str, list[str]] = {}
        for name, service in self.services.items():
            for network in (service.get("networks") or {}).values():
                for alias in (network or {}).get("aliases", []):
                    self.aliases.setdefault(alias, []).append(name)
        self._processes: list[tuple[str, subprocess.Popen]] = []
        self._standins: list[Any] = []

    # Addresses ----------------------------------------------------------------------------------

    def address(self, service: str, container_port: int) -> str:
        """Where a client on this host reaches ``service``'s ``container_port``."""
        try:
            return f"127.0.0.1:{self.ports[service][container_port]}"
        except KeyError:
            raise ComposeError(f"service {service!r} publishes no port {container_port}") from None

    def published(self, host_port: int) -> str:
        """The local address behind a port compose publishes on the host (e.g. 7480 for metadata-2)."""
        for name, service in self.services.items():
            for mapping in service.get("ports", []):
                published, container = _container_port(mapping)
                if published == host_port:
                    return self.address(name, container)
        raise ComposeError(f"no service publishes port {host_port}")

    def _translate(self, text: str, service: str) -> str:
        def replace(match: re.Match) -> str:
            host, port, dns = match.group("host"), int(match.group("port")), match.group("dns")
            if host in _OWN_HOSTS and port in self.ports[service]:
                return self.address(service, port)
            if host in _OWN_HOSTS and port in self._host_ports():  # another service's port published on the host
                return self.published(port)
            targets = [host] if host in self.services else self.aliases.get(host, [])
            if not targets:
                return match.group(0)
            addresses = [self.address(target, port) for target in targets]
            return "ipv4:" + ",".join(addresses) if dns else addresses[0]

        return _ADDRESS.sub(replace, text)

    def _host_ports(self) -> set[int]:
        return {
            _container_port(mapping)[0] for service in self.services.values() for mapping in service.get("ports", [])
        }

    def _volumes(self, service: str) -> dict[str, str]:
        """Container path → local folder, for the named volumes and bind mounts ``service`` mounts."""
        mounts = {}
        for volume in self.services[service].get("volumes", []):
            source, _, rest = str(volume).partition(":")
            target = rest.split(":")[0]
            if source in (self.spec.get("volumes") or {}):
                folder = os.path.join(self.workdir, "volumes", source)
                os.makedirs(folder, exist_ok=True)
                mounts[target] = folder
            elif source.startswith(("/", ".")):
                mounts[target] = os.path.abspath(source)
        return mounts

    @staticmethod
    def _in_mount(value: str, mounts: dict[str, str]) -> str:
        """``value`` with a leading container path that a mount covers replaced by its local folder."""
        for target, folder in mounts.items():
            if value == target or value.startswith(target.rstrip("/") + "/"):
                return folder + value[len(target.rstrip("/")) :]
        return value

    def environment(self, service: str) -> dict[str, str]:
        """The environment compose gives ``service``'s container, translated for this host."""
        mounts = self._volumes(service)
        translated = {}
        for key, value in (self.services[service].get("environment") or {}).items():
            value = self._translate("" if value is None else str(value), service)
            translated[key] = self._in_mount(value, mounts)
        return translated

    def _command(self, service: str, words: list[str]) -> list[str]:
        words = [self._translate(str(word), service) for word in words]
        return [sys.executable if words and words[0] == "python" else words[0], *words[1:]]

    # Running ------------------------------------------------------------------------------------

    def _levels(self) -> list[list[str]]:
        """Services grouped so that each group depends only on earlier ones."""
        depth: dict[str, int] = {}

        def level(name: str, seen: tuple[str, ...] = ()) -> int:
            if name in seen:
                raise ComposeError(f"services depend on each other in a cycle: {' -> '.join(seen + (name,))}")
            if name not in depth:
                depends = self.services[name].get("depends_on") or {}
                depth[name] = 1 + max((level(d, seen + (name,)) for d in depends), default=-1)
            return depth[name]

        for name in self.services:
            level(name)
        return [[n for n in self.services if depth[n] == d] for d in range(max(depth.values()) + 1)]

    def _start_standin(self, name: str, service: dict) -> None:
        environment = service.get("environment") or {}
        if name == "postgres":
            server = LocalPostgres(
                port=self.ports[name][5432],
                user=environment.get("POSTGRES_USER", "postgres"),
                database=environment.get("POSTGRES_DB", "postgres"),
                settings=postgres_settings(service.get("command") or []),
            )
            self._standins.append(server.__enter__())
        elif name == "s3":
            try:
                from moto.server import ThreadedMotoServer
            except ImportError:
                return  # no S3 stand-in on this machine; the session does not need one
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.ports[name][9000])
            server.start()
            self._standins.append(server)
        else:
            raise ComposeError(f"service {name!r} is an image ({service.get('image')}) with no local stand-in")

    def _start_process(self, name: str, service: dict) -> None:
        log = open(os.path.join(self.workdir, f"{name}.log"), "ab")  # a restart appends
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("THRESHER_", "AWS_"))}
        environment.update(self.environment(name))
        process = subprocess.Popen(
            self._command(name, service["command"]),
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        log.close()
        self._processes.append((name, process))

    def _healthy(self, name: str) -> bool:
        check = (self.services[name].get("healthcheck") or {}).get("test")
        if not check or name not in dict(self._processes):
            return True  # stand-ins are ready once started
        words = check[1:] if check[0] in ("CMD", "CMD-SHELL") else check
        environment = {k: v for k, v in os.environ.items() if not k.startswith("THRESHER_")}
        environment.update(self.environment(name))
        return (
            subprocess.run(self._command(name, words), env=environment, capture_output=True, timeout=60).returncode == 0
        )

    def _await_healthy(self, names: list[str]) -> None:
        deadline = time.monotonic() + HEALTH_DEADLINE_SECONDS
        waiting = list(names)
        while waiting:
            for name in list(waiting):
                process = dict(self._processes).get(name)
                if process is not None and process.poll() is not None:
                    raise ComposeError(f"service {name!r} exited with {process.returncode}:\n{self.log(name)}")
                if self._healthy(name):
                    waiting.remove(name)
            if waiting and time.monotonic() > deadline:
                raise ComposeError(
                    f"services {waiting} not healthy in {HEALTH_DEADLINE_SECONDS:.0f} s:\n"
                    + "\n".join(self.log(n) for n in waiting)
                )

    def pids(self) -> dict[str, int]:
        """The process id of each service running as a process."""
        return {name: process.pid for name, process in self._processes}

    def kill(self, name: str) -> None:
        """SIGKILLs service ``name``, as a container that dies."""
        process = dict(self._processes)[name]
        process.kill()
        process.wait()

    def restart(self, name: str) -> None:
        """Starts service ``name`` again, with the same command, environment and ports; returns once its
        health check passes."""
        old = dict(self._processes)[name]
        if old.poll() is None:
            raise ComposeError(f"service {name!r} is still running")
        self._processes = [(n, p) for n, p in self._processes if p is not old]
        self._start_process(name, self.services[name])
        self._await_healthy([name])

    def log(self, name: str, tail: int = 4000) -> str:
        try:
            with open(os.path.join(self.workdir, f"{name}.log"), "rb") as handle:
                return handle.read()[-tail:].decode("utf-8", "replace")
        except OSError:
            return ""

    def start(self) -> ComposeProcesses:
        for group in self._levels():
            for name in group:
                service = self.services[name]
                if "build" in service:
                    self._start_process(name, service)
                else:
                    self._start_standin(name, service)
            self._await_healthy(group)
        return self

    def stop(self) -> None:
        for _, process in reversed(self._processes):
            process.terminate()
        for _name, process in reversed(self._processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        while self._standins:
            self._standins.pop().stop()
        if self._scratch is not None:
            self._scratch.cleanup()

    def __enter__(self) -> ComposeProcesses:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
