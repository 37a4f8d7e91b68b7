"""Errors the loader raises."""

from __future__ import annotations

from thresher.core.errors import ThresherError


class LoaderError(ThresherError):
    """The loader was used wrongly: closed, given a bad state, or a source it cannot ship."""


class WorkerError(ThresherError):
    """Computing a batch failed in a worker; the message holds the worker's traceback.

    `__cause__` is the worker's exception where it could be brought back, `steps` the steps of
    the batch, and `traceback` the worker's formatted traceback.
    """

    def __init__(self, message: str, *, steps: range | None = None, traceback: str = "") -> None:
        super().__init__(message)
        self.steps = steps
        self.traceback = traceback
