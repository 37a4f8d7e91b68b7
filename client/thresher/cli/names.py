"""What NAME means on the command line: ``owner/namespace/datasource``, or a saved dataset of that namespace."""

from __future__ import annotations

from typing import Any

import click

DATASET_PREFIX = "dataset:"
DATASOURCE_PREFIX = "datasource:"


def split(name: str) -> tuple[str, str]:
    """``("owner/namespace", "name")`` of ``owner/namespace/name``; a usage error otherwise."""
    parts = name.split("/")
    if len(parts) != 3 or not all(parts):
        raise click.BadParameter(f"{name!r} is not OWNER/NAMESPACE/NAME (e.g. team/pets/images)", param_hint="NAME")
    return f"{parts[0]}/{parts[1]}", parts[2]


def resolve(name: str, connection: Any) -> Any:
    """The datasource ``name`` names, else the saved dataset of that name; prefixes force one or the other."""
    from thresher import datasets, datasources
    from thresher.core.errors import NotFoundError

    if name.startswith(DATASET_PREFIX):
        namespace, short = split(name.removeprefix(DATASET_PREFIX))
        return datasets.get_dataset(namespace, short, connection=connection)
    forced = name.startswith(DATASOURCE_PREFIX)
    namespace, short = split(name.removeprefix(DATASOURCE_PREFIX))
    try:
        return datasources.get_datasource(namespace, short, connection=connection)
    except NotFoundError:
        if forced:
            raise
    try:
        return datasets.get_dataset(namespace, short, connection=connection)
    except NotFoundError:
        raise NotFoundError(
            f"namespace '{namespace}' has no datasource or saved dataset named '{short}' "
            f"(thresher ls {namespace} lists them)"
        ) from None
