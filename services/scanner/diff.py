"""Decides, page by page while the listing runs, what changed since the last scan."""

from __future__ import annotations

from collections.abc import Mapping

from thresher.services.scanner.sources import Page


class Diff:
    """Compares listed files with the indexed (size, modified in microseconds) of each path."""

    def __init__(self, indexed: Mapping[str, tuple[int | None, int | None]]) -> None:
        self._unseen = dict(indexed)

    def split(self, page: Page) -> tuple[Page, Page]:
        """The (added, changed) files of ``page``; unchanged ones are in neither."""
        unseen = self._unseen.pop
        added: list[int] = []
        changed: list[int] = []
        for row, (path, size, mtime_ns) in enumerate(zip(page.paths, page.sizes, page.mtimes_ns)):
            previous = unseen(path, None)
            if previous is None:
                added.append(row)
            # Compared at the precision `modified` is stored at. A path indexed without these fields
            # (written by hand before any scan) counts as changed.
            elif previous != (size, mtime_ns // 1000):
                changed.append(row)
        return page.take(added), page.take(changed)

    def removed(self) -> list[str]:
        """The indexed paths no listed file matched; complete only once the listing has ended."""
        return list(self._unseen)
