"""The data commands against real services: ls, scan, query, sql, export, download, token, status.

They run ``thresher.cli.main`` in-process (the same function the `thresher` script runs) for speed;
test_cli.py runs the script as a subprocess.
"""

from __future__ import annotations

import csv
import io
import json
import socket
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from thresher import datasources
from thresher.cli import main

FILES = {
    "train/cat_1.png": b"a" * 10,
    "train/cat_2.png": b"b" * 300,
    "train/dog_1.png": b"c" * 200,
    "test/cat_3.png": b"d" * 150,
    "test/bird_1.png": b"e" * 50,
}
LABELS = {"train/cat_1.png": "cat", "train/cat_2.png": "cat", "train/dog_1.png": "dog", "test/cat_3.png": "cat"}


@pytest.fixture
def world(local_services, client, namespace, tmp_path):
    """A scanned datasource `<namespace>/images` with labels and scores, and a saved dataset `cats`."""
    folder = tmp_path / "images"
    for path, content in FILES.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(content)
    ds = datasources.get_or_create(namespace, "images", folder, connection=client).wait_until_ready(
        timeout=60, progress=False
    )
    with ds.metadata_context() as ctx:
        for index, (path, label) in enumerate(sorted(LABELS.items())):
            ctx.update_metadata(path, {"label": label, "score": index / 10, "weird name": f"w{index}"})
    ds[ds["label"] == "cat"].save_dataset("cats")
    addresses = [
        "--metadata-address",
        local_services.metadata_address,
        "--scanner-address",
        local_services.scanner_address,
        "--flight-address",
        local_services.flight_address,
    ]
    return {"namespace": namespace, "name": f"{namespace}/images", "ds": ds, "addresses": addresses, "folder": folder}


def run(world, *args: str, capsys) -> tuple[int, str, str]:
    code = main([*world["addresses"], *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def rows_of_json(text: str) -> list[dict]:
    return json.loads(text)


# ---- query -----------------------------------------------------------------------------------------


def test_query_filters_with_the_expression_language(world, capsys):
    code, out, err = run(
        world, "query", world["name"], 'label == "cat" and size > 100', "--format", "json", capsys=capsys
    )
    assert code == 0, err
    assert sorted(row["path"] for row in rows_of_json(out)) == ["test/cat_3.png", "train/cat_2.png"]


def test_query_selects_orders_and_limits(world, capsys):
    code, out, _ = run(
        world,
        "query",
        world["name"],
        "label is not null",
        "--select",
        "label,score",
        "--order",
        "score:desc",
        "--limit",
        "2",
        "-f",
        "csv",
        capsys=capsys,
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["path", "datapoint_id", "label", "score"]
    assert [row["path"] for row in rows] == ["train/dog_1.png", "train/cat_2.png"]
    code, out, _ = run(world, "query", world["name"], "--order", "-size", "-n", "1", "-f", "json", capsys=capsys)
    assert rows_of_json(out)[0]["path"] == "train/cat_2.png"


def test_query_field_names_with_spaces_and_field_to_field_comparisons(world, capsys):
    code, out, err = run(
        world,
        "query",
        world["name"],
        '`weird name` == "w0" or (score < size and label == "dog")',
        "-f",
        "json",
        capsys=capsys,
    )
    assert code == 0, err
    assert sorted(row["path"] for row in rows_of_json(out)) == ["test/cat_3.png", "train/dog_1.png"]


def test_query_reads_strings_compared_with_datetime_fields_as_instants(world, capsys):
    code, out, err = run(
        world,
        "query",
        world["name"],
        'modified > "2000-01-01" and modified < datetime("2999-01-01")',
        "-f",
        "json",
        capsys=capsys,
    )
    assert code == 0, err
    assert len(rows_of_json(out)) == len(FILES)
    code, out, _ = run(world, "query", world["name"], 'modified < "2000-01-01T00:00:00Z"', "-f", "json", capsys=capsys)
    assert rows_of_json(out) == []


def test_query_prints_a_readable_table_by_default(world, capsys):
    code, out, err = run(world, "query", world["name"], 'path startswith "train/"', "-s", "label", capsys=capsys)
    assert code == 0
    assert "train/cat_1.png" in out and "test/cat_3.png" not in out
    assert "┃ path" in out or "| path" in out  # a Rich table's header
    assert "3 rows" in err


def test_query_reads_a_saved_dataset_by_name_or_prefix(world, capsys):
    for name in (f"{world['namespace']}/cats", f"dataset:{world['namespace']}/cats"):
        code, out, _ = run(world, "query", name, "size < 100", "-f", "json", capsys=capsys)
        assert code == 0
        assert [row["path"] for row in rows_of_json(out)] == ["train/cat_1.png"]


def test_query_writes_parquet_and_csv_files(world, capsys, tmp_path):
    target = tmp_path / "cats.parquet"
    code, _, err = run(
        world, "query", world["name"], 'label == "cat"', "-f", "parquet", "-o", str(target), capsys=capsys
    )
    assert code == 0, err
    assert sorted(pq.read_table(target).column("path").to_pylist()) == [
        "test/cat_3.png",
        "train/cat_1.png",
        "train/cat_2.png",
    ]
    target = tmp_path / "all.csv"
    assert run(world, "query", world["name"], "-f", "csv", "-o", str(target), capsys=capsys)[0] == 0
    assert len(list(csv.DictReader(target.open()))) == len(FILES)


# ---- sql, ls, scan, export, download ---------------------------------------------------------------


def test_sql_goes_through_flight_sql(world, capsys):
    statement = f'SELECT label, count(*) AS n FROM "{world["namespace"]}".images GROUP BY label ORDER BY label'
    code, out, err = run(world, "sql", statement, "-f", "json", capsys=capsys)
    assert code == 0, err
    assert rows_of_json(out) == [{"label": "cat", "n": 3}, {"label": "dog", "n": 1}, {"label": None, "n": 1}]


def test_ls_lists_namespaces_datasources_datasets_and_fields(world, capsys):
    code, out, _ = run(world, "ls", capsys=capsys)
    assert code == 0 and world["namespace"] in out
    code, out, _ = run(world, "ls", world["namespace"], capsys=capsys)
    assert code == 0
    assert "images" in out and "ready" in out
    assert 'label == "cat"' in out  # the saved dataset's filter, in the expression language
    code, out, _ = run(world, "ls", world["name"], capsys=capsys)
    assert code == 0
    for field in ("label", "score", "weird name", "size", "string", "float"):
        assert field in out


def test_scan_rescans_and_creates_with_source(world, capsys, tmp_path):
    (world["folder"] / "new.png").write_bytes(b"x")
    code, out, err = run(world, "scan", world["name"], capsys=capsys)
    assert code == 0, err
    assert "ready" in out and "1 added" in out
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_bytes(b"hello")
    code, out, err = run(world, "scan", f"{world['namespace']}/other", "--source", str(other), capsys=capsys)
    assert code == 0, err
    assert "1 files seen" in out


def test_download_fetches_the_matching_files(world, capsys, tmp_path):
    code, out, err = run(
        world, "download", world["name"], str(tmp_path / "out"), 'label == "dog"', "--flat", capsys=capsys
    )
    assert code == 0, err
    assert (tmp_path / "out" / "train" / "dog_1.png").read_bytes() == FILES["train/dog_1.png"]
    assert not (tmp_path / "out" / "train" / "cat_1.png").exists()


def test_export_writes_a_bag_dataset(world, capsys, tmp_path):
    from thresher import ShardedDatasetReader, decoders

    target = tmp_path / "bag"
    code, out, err = run(
        world, "export", world["name"], str(target), 'label == "cat"', "-c", "label", "--shardlen", "2", capsys=capsys
    )
    assert code == 0, err
    assert "exported 3 datapoints in 2 shards" in out
    reader = ShardedDatasetReader(str(target), decoders)
    assert len(reader) == 3


def test_token_create_prints_a_token_the_services_accept(capsys):
    from thresher.services.auth.tokens import TokenTable

    assert main(["token", "create", "--subject", "ci-bot", "--namespace", "team/*", "--mode", "write"]) == 0
    token, line = capsys.readouterr().out.splitlines()
    assert token not in line  # only its digest is in the config line
    identity = TokenTable.parse(line).authenticate(token)
    assert identity.subject == "ci-bot"
    assert identity.may("team/pets", write=True) and not identity.may("other/x")
    assert main(["token", "create", "--subject", "a", "--plain"]) == 0
    token, line = capsys.readouterr().out.splitlines()
    assert line == f"{token}=a:*:read"
    assert main(["token", "create", "--subject", "a"]) == 0
    assert capsys.readouterr().out.splitlines()[0] != token  # random each time


def test_status_reports_each_service(world, capsys):
    code, out, _ = run(world, "status", capsys=capsys)
    assert code == 0
    assert out.count("up") >= 3
    port = _closed_port()
    code = main(
        [
            "--metadata-address",
            f"127.0.0.1:{port}",
            "--scanner-address",
            f"127.0.0.1:{port}",
            "--flight-address",
            f"127.0.0.1:{port}",
            "status",
            "--timeout",
            "0.5",
        ]
    )
    assert code == 1
    assert "not answering" in capsys.readouterr().out


def test_every_command_has_help(capsys):
    for command in (
        ["up"],
        ["demo"],
        ["status"],
        ["ls"],
        ["scan"],
        ["query"],
        ["sql"],
        ["export"],
        ["download"],
        ["token"],
        ["token", "create"],
        ["config"],
        [],
    ):
        assert main([*command, "--help"]) == 0
        assert "Usage: thresher" in capsys.readouterr().out


# ---- user errors: status 2 and one line --------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["query"], "Missing argument 'NAME'"),
        (["nonsense"], "No such command 'nonsense'"),
        (["query", "{name}", "--limit", "-1"], "Invalid value for '--limit'"),
        (["query", "team/x"], "is not OWNER/NAMESPACE/NAME"),
        (["query", "{namespace}/nothing"], "no datasource or saved dataset named 'nothing'"),
        (["query", "{name}", "size >"], "column 7: expected a field or a value"),
        (["query", "{name}", "colour == 1"], "no field 'colour'"),
        (["query", "{name}", 'size == "big"'], "field 'size' has type int; got string"),
        (["query", "{name}", "--order", "size:up"], "the direction after ':' is asc or desc"),
        (["query", "{name}", "--order", "nope"], "no field 'nope'"),
        (["query", "{name}", "-f", "parquet"], "--format parquet needs --output FILE"),
        (["query", "{name}", "-f", "csv", "-o", "/nonexistent/dir/out.csv"], "No such file or directory"),
        (["sql", "SELECT nope FROM nowhere"], "nowhere"),
        (["scan", "{namespace}/missing", "--source", "/nonexistent/folder"], "failed"),
        (["token", "create", "--subject", "a b"], "may not be empty or hold spaces"),
    ],
)
def test_user_errors_exit_2_with_one_line(world, capsys, args, expected):
    args = [a.format(name=world["name"], namespace=world["namespace"]) for a in args]
    code, out, err = run(world, *args, capsys=capsys)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    assert "Traceback" not in err + out


@pytest.mark.slow(reason="waits out the client's retries of a closed port")
def test_unreachable_services_are_one_line_too(capsys):
    port = _closed_port()
    code = main(["--metadata-address", f"127.0.0.1:{port}", "ls"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert f"127.0.0.1:{port}" in err


@pytest.mark.slow(reason="a fresh interpreter that waits out the client's retries")
def test_the_script_exits_2_with_one_line_and_no_traceback(tmp_path):
    port = _closed_port()
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "thresher.cli",
            "--metadata-address",
            f"127.0.0.1:{port}",
            "query",
            "team/pets/images",
            "label == 1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 2
    assert len(process.stderr.strip().splitlines()) == 1, process.stderr
    assert process.stderr.startswith("error: ")
