"""Fixtures for the loader tests: checks that nothing outlives a loader."""

from __future__ import annotations

import os

import pytest

from thresher.loader import Loader

from .fakes import Points


def descendants() -> set[int]:
    """The ids of this process's live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # Zombies count too: a worker nobody waited for is a leak.
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def shm_exists(name: str) -> bool:
    return os.path.exists(f"/dev/shm/{name}")


@pytest.fixture(scope="session")
def helpers_running():
    """Starts multiprocessing's long-lived helpers (forkserver, resource tracker) once.

    They are shared by every loader in the process and outlive each one by design, so the
    checks below take them as the baseline.
    """
    with Loader(Points(8), 4, workers=1) as loader:
        list(loader)


@pytest.fixture
def no_leaks(helpers_running):
    """Fails the test if it leaves a child process behind."""
    before = descendants()
    yield
    assert descendants() - before == set()
