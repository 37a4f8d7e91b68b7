"""How a writer's bytes reach the disk: batched ``writev`` calls and atomic small files.

Writers produce many small records; handing them to the OS one list at a time with ``writev``
avoids both per-record system calls and a copy into one joined buffer. (A background thread for
these writes was tried and dropped: on two busy cores it lost more to GIL hand-offs than it won.)
"""

from __future__ import annotations

import os
from collections.abc import Sequence

TMP = ".tmp"
_IOV_MAX = 1024


def write_all(fd: int, buffers: Sequence[bytes | memoryview], want: int) -> None:
    """Write ``buffers`` (``want`` bytes in all) to ``fd``, however the OS splits the writes."""
    for i in range(0, len(buffers), _IOV_MAX):
        chunk = buffers[i : i + _IOV_MAX]
        size = want if len(buffers) <= _IOV_MAX else sum(map(len, chunk))
        done = os.writev(fd, chunk)
        while done < size:
            chunk, size = _rest(chunk, done), size - done
            done = os.writev(fd, chunk)


def _rest(buffers: Sequence[bytes | memoryview], skip: int) -> list[bytes | memoryview]:
    rest: list[bytes | memoryview] = []
    for b in buffers:
        if skip >= len(b):
            skip -= len(b)
        else:
            rest.append(memoryview(b)[skip:])
            skip = 0
    return rest


def write_file_atomic(path: str, content: bytes) -> None:
    """Write ``path`` so that it appears whole or not at all."""
    tmp = path + TMP
    with open(tmp, "wb") as f:
        f.write(content)
    os.replace(tmp, path)
