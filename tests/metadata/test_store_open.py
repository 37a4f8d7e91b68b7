"""What an operator sees when the metadata service cannot open its store."""

from __future__ import annotations

import socket

import pytest

from thresher.core.errors import StoreUnavailableError
from thresher.core.storage.blobs import open_blob_store
from thresher.services.metadata.store.postgres_connections import without_password


@pytest.mark.parametrize(
    "url, shown",
    [
        (
            "postgresql://u:secret@db:5432/thresher?sslmode=require",
            "postgresql://u:***@db:5432/thresher?sslmode=require",
        ),
        ("postgresql://u@[::1]:5432/thresher", "postgresql://u@[::1]:5432/thresher"),
        ("postgresql://db/thresher?user=u&password=secret&x=1", "postgresql://db/thresher?user=u&password=***&x=1"),
        ("host=db password=secret dbname=thresher", "host=db password=*** dbname=thresher"),
        ("host=db password='se cret' dbname=thresher", "host=db password=*** dbname=thresher"),
    ],
)
def test_a_database_url_is_shown_without_its_password(url, shown):
    assert without_password(url) == shown


def _closed_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


def test_an_unreachable_postgres_store_is_named_without_its_password(tmp_path):
    pytest.importorskip("adbc_driver_postgresql")
    from thresher.services.metadata.store import PostgresStore

    url = f"postgresql://thresher:hunter2-secret@127.0.0.1:{_closed_port()}/thresher"
    with pytest.raises(StoreUnavailableError) as refused:
        PostgresStore(url, open_blob_store(home=str(tmp_path)))
    message = str(refused.value)
    assert message.startswith(f"cannot connect to the PostgreSQL store at {url.replace('hunter2-secret', '***')}: ")
    assert "hunter2-secret" not in message


def test_thresher_up_on_an_unreachable_postgres_store_is_a_user_error(monkeypatch, capsys, tmp_path):
    pytest.importorskip("adbc_driver_postgresql")
    from thresher.cli.app import main

    monkeypatch.setenv("THRESHER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("THRESHER_POSTGRES_URL", f"postgresql://thresher:hunter2-secret@127.0.0.1:{_closed_port()}/x")
    assert main(["up", "--port", "0", "--no-gallery"]) == 2
    err = capsys.readouterr().err
    assert "cannot connect to the PostgreSQL store at postgresql://thresher:***@127.0.0.1:" in err
    assert "unexpected" not in err and "hunter2-secret" not in err
