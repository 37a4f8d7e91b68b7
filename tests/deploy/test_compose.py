"""compose.yaml, run as local processes with the commands and environment it gives each container
(no Docker engine here), serving a client session through its published ports."""

from __future__ import annotations

import os
import pathlib

import pandas as pd
import pyarrow.flight as fl
import pytest

import thresher
from thresher import datasets, datasources
from thresher.errors import ThresherError

from .compose_processes import ComposeError, ComposeProcesses, load_compose

COMPOSE = str(pathlib.Path(__file__).resolve().parents[2] / "compose.yaml")
VARIABLES = {"THRESHER_TOKENS": "admin-secret=admin:*:write,scanner-secret=scanner:*:write,"
                                "viewer-secret=viewer:team/*:read",
             "THRESHER_SERVICE_TOKEN": "scanner-secret"}


def test_compose_declares_replicas_health_checks_and_required_settings():
    services = load_compose(COMPOSE, VARIABLES)["services"]
    assert {"postgres", "s3", "metadata-1", "metadata-2", "scanner", "flight-1", "flight-2"} <= set(services)
    ours = [name for name, service in services.items() if "build" in service]
    for name in ours:
        check = services[name]["healthcheck"]["test"]
        assert check[:4] == ["CMD", "python", "-m", "thresher.services.healthcheck"], name
        assert services[name]["environment"]["THRESHER_TOKENS"] == VARIABLES["THRESHER_TOKENS"]
    with pytest.raises(ComposeError, match="THRESHER_TOKENS"):
        load_compose(COMPOSE, {})


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    data = tmp_path_factory.mktemp("datasets")
    with ComposeProcesses(COMPOSE, {**VARIABLES, "THRESHER_DATA_DIR": str(data)},
                          workdir=str(tmp_path_factory.mktemp("compose"))) as running:
        yield running, data


def test_a_client_session_against_the_compose_services(deployment):
    running, data = deployment
    for i in range(3):
        (data / f"img{i}.png").write_bytes(bytes([i]) * 10)
    namespace = f"team/compose-{os.getpid()}"
    # Published ports, as a client outside the compose network sees them.
    first = thresher.Connection(running.published(7470), running.published(7472), running.published(7471),
                                token="admin-secret")
    second = thresher.Connection(running.published(7480), running.published(7473), running.published(7471),
                                 token="viewer-secret")
    ds = datasources.get_or_create(namespace, "images", data, connection=first).wait_until_ready(
        timeout=60, progress=False)
    ds.upload_metadata_from_dataframe(pd.DataFrame({"path": ["img1.png", "img2.png"], "label": ["cat", "dog"]}),
                                      path_column="path")
    ds[ds["label"] == "dog"].save_dataset("dogs")

    seen = datasources.get_datasource(namespace, "images", connection=second)
    assert sorted(seen.all().dataframe["path"]) == ["img0.png", "img1.png", "img2.png"]
    assert datasets.get_dataset(namespace, "dogs", connection=second).all().dataframe["path"].tolist() == ["img2.png"]
    with pytest.raises(ThresherError):
        seen.upload_metadata_from_dataframe(pd.DataFrame({"path": ["img0.png"], "label": ["x"]}), path_column="path")


def test_flight_endpoints_advertise_addresses_reachable_from_outside(deployment):
    running, _ = deployment
    options = fl.FlightCallOptions(headers=[(b"authorization", b"Bearer admin-secret")])
    for host_port in (7472, 7473):
        with fl.connect(f"grpc://{running.published(host_port)}") as client:
            infos = list(client.list_flights(options=options))
            assert infos, "the session above saved a datasource and a dataset"
            location = infos[0].endpoints[0].locations[0].uri.decode()
            assert location == f"grpc+tcp://localhost:{running.published(host_port).rsplit(':', 1)[1]}"
            with fl.connect(location) as outside:
                assert outside.do_get(infos[0].endpoints[0].ticket, options=options).read_all().num_rows >= 1


def test_compose_services_refuse_callers_without_a_token(deployment):
    running, _ = deployment
    anonymous = thresher.Connection(running.published(7470), running.published(7472), running.published(7471),
                                    token="", retry_timeout=0.2)
    with pytest.raises(ThresherError):
        datasources.get_datasources("team/anything", connection=anonymous)


def test_postgres_runs_with_the_bulk_load_settings_compose_gives_it(deployment):
    import adbc_driver_postgresql.dbapi as adbc_postgres

    from .compose_processes import postgres_settings

    running, _ = deployment
    settings = postgres_settings(load_compose(COMPOSE, VARIABLES)["services"]["postgres"]["command"])
    assert {"max_wal_size", "checkpoint_timeout", "shared_buffers", "synchronous_commit"} <= set(settings)
    assert settings["synchronous_commit"] == "on"  # an acknowledged upload stays durable
    with adbc_postgres.connect(f"postgresql://thresher@{running.address('postgres', 5432)}/thresher") as connection:
        with connection.cursor() as cursor:
            for name, value in settings.items():
                cursor.execute(f"SELECT current_setting('{name}')")
                assert cursor.fetchone()[0] == value, name
