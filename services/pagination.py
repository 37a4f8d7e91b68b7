"""Every item of a paginated List call of the metadata service, fetched page by page as it is consumed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def list_all(call: Callable[..., Any], request: Any, field: str, **options: Any) -> Iterator[Any]:
    """The items in ``field`` of every page ``call(request, **options)`` answers, following
    ``next_page_token`` into ``request.page_token`` (the request is changed in place)."""
    while True:
        response = call(request, **options)
        yield from getattr(response, field)
        if not response.next_page_token:
            return
        request.page_token = response.next_page_token
