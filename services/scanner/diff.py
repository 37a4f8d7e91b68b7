"""Decides, page by page while the listing runs, what changed since the last scan."""

from __future__ import annotations

from collections.abc import Mapping

from thresher.services.scanner.scan_sources import Page

# What the index remembers of a path to tell a change: (size, stamp), the stamp being the modification
# time in microseconds, or the object's tag for sources that tag objects.
Stamp = tuple[int | None, int | str | None]


class Diff:
    """Compares listed files with the indexed (size, stamp) of each path.

    ``by_etag``: the stamp is the object's tag (S3 ETag, GCS MD5, git blob id), so a rewrite with the
    same bytes is no change and a new git commit does not touch the files it left alone. Otherwise it
    is the modification time, at the microsecond precision ``modified`` is stored at.
    """

    def __init__(self, indexed: Mapping[str, Stamp], by_etag: bool = False) -> None:
        self._unseen = dict(indexed)
        self._by_etag = by_etag

    def split(self, page: Page) -> tuple[Page, Page]:
        """The (added, changed) files of ``page``; unchanged ones are in neither."""
        if not self._unseen:
            # Nothing (left) indexed, as on a first scan: every file is new, and no per-file loop is needed.
            # A path listed twice cannot happen: listings name each file once.
            return page, Page()
        unseen = self._unseen.pop
        stamps = page.etags if self._by_etag else [mtime_ns // 1000 for mtime_ns in page.mtimes_ns]
        if stamps is None:
            raise ValueError("a diff by etag needs pages that carry etags")
        added: list[int] = []
        changed: list[int] = []
        for row, (path, size, stamp) in enumerate(zip(page.paths, page.sizes, stamps)):
            previous = unseen(path, None)
            if previous is None:
                added.append(row)
            # A path indexed without these fields (written by hand before any scan) counts as changed.
            elif previous != (size, stamp):
                changed.append(row)
        return page.take(added), page.take(changed)

    def removed(self) -> list[str]:
        """The indexed paths no listed file matched; complete only once the listing has ended."""
        return list(self._unseen)
