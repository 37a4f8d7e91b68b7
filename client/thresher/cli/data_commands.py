"""``ls``, ``scan``, ``query``, ``sql``, ``export`` and ``download``: the data, from the shell."""

from __future__ import annotations

import time
from typing import Any

import click

from thresher.cli import console, names, render
from thresher.cli.app import connection


@click.command(name="ls")
@click.argument("target", required=False, metavar="[NAMESPACE | NAME]")
@click.pass_context
def ls(ctx: click.Context, target: str | None) -> None:
    """List namespaces; a namespace's datasources and saved datasets; or a datasource's fields."""
    from thresher import datasets, datasources, namespaces
    from thresher.expressions import to_text
    from thresher.v1 import metadata_service_pb2 as ms

    conn = connection(ctx)
    if target is None:
        rows, token = [], ""
        while True:
            response = conn.call_metadata(
                "ListNamespaces", ms.ListNamespacesRequest(page_size=500, page_token=token), idempotent=True
            )
            rows += [[n.name, n.repository_uri or None, _instant(n.created_at)] for n in response.namespaces]
            token = response.next_page_token
            if not token:
                break
        render.print_rows(["namespace", "repository", "created"], rows, "no namespaces yet")
        return
    if target.count("/") == 1:
        namespaces.get_namespace(target, connection=conn)  # NotFoundError names it
        sources = datasources.get_datasources(target, connection=conn)
        render.print_rows(
            ["datasource", "id", "source", "revision", "scan", "fields"],
            [[ds.name, ds.id, ds.source, ds.revision or None, ds.scan_status.state, len(ds.fields)] for ds in sources],
            f"no datasources in {target}",
        )
        saved = datasets.get_datasets(target, connection=conn)
        if saved:
            render.print_rows(
                ["dataset", "datasource", "filter", "as of"],
                [
                    [
                        ds.dataset_name,
                        ds.name,
                        to_text(ds.query.filter) if ds.query.filter is not None else None,
                        ds.query.as_of,
                    ]
                    for ds in saved
                ],
                "",
            )
        return
    view = names.resolve(target, conn)
    render.print_rows(
        ["field", "type"],
        [["path", "string"], ["datapoint_id", "int"]]
        + [[name, kind.value] for name, kind in sorted(view.fields.items())],
        "",
    )


@click.command()
@click.argument("name")
@click.option(
    "--source",
    metavar="URI",
    help="create the datasource over this folder, s3://, gs:// or git path if it does not exist",
)
@click.option("--revision", help="git revision, with --source on a namespace bound to a repository")
@click.option("--wait/--no-wait", default=True, show_default=True, help="wait for the scan to finish")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, help="give up waiting after this many seconds")
@click.pass_context
def scan(
    ctx: click.Context, name: str, source: str | None, revision: str | None, wait: bool, timeout: float | None
) -> None:
    """Scan datasource NAME (incrementally), or create it over --source and scan it; show progress."""
    from thresher import datasources

    conn = connection(ctx)
    if source is not None:
        namespace, short = names.split(name)
        ds = datasources.get_or_create(namespace, short, source, revision, connection=conn)
    else:
        if revision is not None:
            raise click.UsageError("--revision goes with --source")
        ds = names.resolve(names.DATASOURCE_PREFIX + name.removeprefix(names.DATASOURCE_PREFIX), conn)
        ds.rescan()
    if not wait:
        console.note(f"scan of {ds.namespace}/{ds.name} started")
        return
    status = _wait_for_scan(ds, timeout)
    console.out().print(
        f"{ds.namespace}/{ds.name}: {status.state}, {status.files_seen} files seen, "
        f"{status.datapoints_added} added, {status.datapoints_updated} updated, "
        f"{status.datapoints_removed} removed",
        highlight=False,
    )


def _wait_for_scan(ds: Any, timeout: float | None) -> Any:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from thresher.core.errors import ScanFailedError

    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.02
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console.err(), transient=True
    ) as progress:
        task = progress.add_task(f"scanning {ds.namespace}/{ds.name}")
        while True:
            status = ds.scan_status
            progress.update(
                task,
                description=f"scanning {ds.namespace}/{ds.name}: {status.files_seen:,} files "
                f"({status.files_per_second:,.0f}/s)",
            )
            if status.state == "ready":
                return status
            if status.state == "failed":
                raise ScanFailedError(
                    f"the scan of {ds.namespace}/{ds.name} failed: {status.failure_reason or 'no reason given'}"
                )
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"the scan of {ds.namespace}/{ds.name} is still {status.state} after "
                    f"{timeout:g} s ({status.files_seen} files seen); it goes on in the scanner"
                )
            # Poll quickly at first (small scans finish fast), then a few times a second.
            time.sleep(pause)
            pause = min(pause * 1.5, 0.25)


def _output_options(function: Any) -> Any:
    function = click.option("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")(function)
    return click.option(
        "--format",
        "-f",
        "fmt",
        type=click.Choice(render.FORMATS),
        default="table",
        show_default=True,
        help="how to write the rows",
    )(function)


def _view(ctx: click.Context, name: str, expression: str | None) -> Any:
    from thresher.expressions import parse

    ds = names.resolve(name, connection(ctx))
    if expression is not None and expression.strip():
        ds = ds[parse(expression, ds)]
    return ds


@click.command()
@click.argument("name")
@click.argument("expression", required=False)
@click.option(
    "--select",
    "-s",
    "select",
    multiple=True,
    metavar="FIELDS",
    help="fields to return (repeat, or separate with commas); default: all",
)
@click.option(
    "--order",
    multiple=True,
    metavar="FIELD[:desc]",
    help="sort key (repeat for more): 'score:desc' or '-score' sorts descending",
)
@click.option("--limit", "-n", type=click.IntRange(min=0), default=None, help="at most this many rows")
@_output_options
@click.pass_context
def query(
    ctx: click.Context,
    name: str,
    expression: str | None,
    select: tuple[str, ...],
    order: tuple[str, ...],
    limit: int | None,
    fmt: str,
    output: str | None,
) -> None:
    """Rows of NAME matching EXPRESSION, e.g. thresher query team/pets/images 'label == "cat" and size > 100'.

    EXPRESSION is optional (all rows without it); see --help of the group for NAME.
    """
    view = _view(ctx, name, expression)
    fields = [field.strip() for item in select for field in item.split(",") if field.strip()]
    if fields:
        view = view.select(*fields)
    if order:
        view = view.order_by(*(_order(view, key) for key in order))
    if limit is not None:
        view = view.limit(limit)
    render.write(view.all().arrow, fmt, output, limited=limit is not None)


def _order(view: Any, key: str) -> Any:
    from thresher.query import Order

    descending = key.startswith("-")
    field = key.removeprefix("-")
    if ":" in field:
        field, _, direction = field.rpartition(":")
        if direction.lower() not in ("asc", "desc"):
            raise click.BadParameter(f"{key!r}: the direction after ':' is asc or desc", param_hint="--order")
        descending = direction.lower() == "desc"
    view.column(field)  # UnknownFieldError names the fields there are
    return Order(field, descending)


@click.command()
@click.argument("statement")
@_output_options
@click.pass_context
def sql(ctx: click.Context, statement: str, fmt: str, output: str | None) -> None:
    """Run a read-only SQL STATEMENT over Flight SQL: each namespace is a schema, each datasource a table.

    For example: thresher sql 'SELECT label, count(*) FROM "team/pets".images GROUP BY label'
    """
    from thresher.sql import run_sql

    render.write(run_sql(statement, connection=connection(ctx)), fmt, output, limited=False)


@click.command()
@click.argument("name")
@click.argument("target")
@click.argument("expression", required=False)
@click.option(
    "--columns",
    "-c",
    multiple=True,
    metavar="FIELDS",
    help="metadata fields to include (repeat, or separate with commas); default: all",
)
@click.option("--shardlen", type=click.IntRange(min=1), default=1000, show_default=True, help="datapoints a shard")
@click.option("--files/--no-files", default=True, show_default=True, help="include each datapoint's file")
@click.option("--register", metavar="DATASET", help="also register the export under this name in NAME's namespace")
@click.pass_context
def export(
    ctx: click.Context,
    name: str,
    target: str,
    expression: str | None,
    columns: tuple[str, ...],
    shardlen: int,
    files: bool,
    register: str | None,
) -> None:
    """Write NAME's rows (matching EXPRESSION) and files to TARGET as a sharded bag dataset (resumable).

    TARGET is a folder, s3:// or gs:// URI. Progress shows on stderr.
    """
    view = _view(ctx, name, expression)
    wanted = [field.strip() for item in columns for field in item.split(",") if field.strip()] or None
    manifest = view.all().export(target, columns=wanted, shardlen=shardlen, files_too=files)
    if register:
        from thresher import datasets

        datasets.register_export(view.namespace, register, target, connection=connection(ctx))
    console.out().print(
        f"exported {manifest['rows_done']} datapoints in {manifest['shards']} shards to {target}", highlight=False
    )


@click.command()
@click.argument("name")
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("expression", required=False)
@click.option("--flat", is_flag=True, help="drop the source's bucket prefix or repository path from file paths")
@click.option("--redownload", is_flag=True, help="fetch files that are already there again")
@click.pass_context
def download(
    ctx: click.Context, name: str, directory: str, expression: str | None, flat: bool, redownload: bool
) -> None:
    """Download the files of NAME (those matching EXPRESSION) into DIRECTORY, in parallel with progress."""
    result = _view(ctx, name, expression).all()
    report = result.download_files(directory, keep_source_prefix=not flat, redownload=redownload)
    skipped = f", skipped {len(report.unsafe)} unsafe paths" if report.unsafe else ""
    console.out().print(
        f"downloaded {len(report.downloaded)} files ({len(report.skipped) - len(report.unsafe)} already there) to {report.folder}{skipped}",
        highlight=False,
    )


def _instant(timestamp: Any) -> Any:
    import datetime as dt

    return timestamp.ToDatetime(tzinfo=dt.UTC) if timestamp.seconds or timestamp.nanos else None


COMMANDS = [ls, scan, query, sql, export, download]
