"""The `granular` package's positional argument orders for `Loader`, both releases.

granular 0.21 takes `Loader(source, batch, fns, shuffle, prefetch, workers, recycle_after,
shard_id, num_shards, mp)`, where `fns` must be `()` and `shuffle` None (both were removed and
only remain to fail loudly); 0.22 and later drop those two: `Loader(source, batch, prefetch,
workers, recycle_after, shard_id, num_shards, mp)`. The third positional argument tells them apart:
a sequence is 0.21's `fns`, anything else 0.22's `prefetch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ORDER_0_21 = ("fns", "shuffle", "prefetch", "workers", "recycle_after", "shard_id", "num_shards", "mp")
ORDER_0_22 = ("prefetch", "workers", "recycle_after", "shard_id", "num_shards", "mp")


def name_positionals(positional: Sequence[Any], given: dict[str, Any]) -> dict[str, Any]:
    """The arguments after `batch` by name, merged into `given` (the ones passed by name).

    Raises TypeError for too many positional arguments or one also passed by name, and
    ValueError for 0.21's removed `fns` and `shuffle` used, as granular does.
    """
    order = ORDER_0_21 if positional and isinstance(positional[0], (tuple, list)) else ORDER_0_22
    if len(positional) > len(order):
        raise TypeError(
            f"Loader takes at most {len(order) + 2} positional arguments in this order "
            f"(source, batch, {', '.join(order)}), got {len(positional) + 2}"
        )
    named = dict(given)
    for name, value in zip(order, positional):
        if named.get(name) is not None and name not in ("fns",):
            raise TypeError(f"Loader got {name!r} both by position and by name")
        named[name] = value
    if tuple(named.get("fns") or ()) != ():
        raise ValueError(
            "the Loader takes no fns: transform the source instead, source = sources.Transform(source, fn=..., seed=0)"
        )
    if named.get("shuffle") is not None:
        raise ValueError(
            "the Loader does not shuffle: shuffle the source instead, "
            "source = sources.Epochs(source, shuffle=True, seed=0)"
        )
    return named
