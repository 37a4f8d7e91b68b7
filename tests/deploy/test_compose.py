"""compose.yaml, run as local processes with the commands and environment it gives each container
(no Docker engine here), with TLS on, serving client sessions through its published ports: metadata,
queries, blobs, file downloads and an exported bag dataset, through each flight replica."""

from __future__ import annotations

import hashlib
import os
import pathlib
from dataclasses import dataclass

import pandas as pd
import pyarrow.flight as fl
import pytest

import thresher
from thresher import datasets, datasources
from thresher.core.errors import ThresherError

from .certificates import TLS_VARIABLES, make_certificates
from .compose_processes import ComposeError, ComposeProcesses, load_compose

pytestmark = pytest.mark.slow  # the whole compose deployment: PostgreSQL, S3 and seven service processes

COMPOSE = str(pathlib.Path(__file__).resolve().parents[2] / "compose.yaml")
VARIABLES = {
    "THRESHER_TOKENS": "admin-secret=admin:*:write,scanner-secret=scanner:*:write,viewer-secret=viewer:team/*:read",
    "THRESHER_SERVICE_TOKEN": "scanner-secret",
}


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


@dataclass
class Deployment:
    running: ComposeProcesses
    data: pathlib.Path
    ca: str  # the roots a client outside verifies the services with

    def connect(self, replica: int, token: str, **options) -> thresher.Connection:
        """Through metadata replica and flight replica ``replica`` (0 or 1), by their published ports."""
        metadata, flight = ((7470, 7472), (7480, 7473))[replica]
        return thresher.Connection(
            self.running.published(metadata),
            self.running.published(flight),
            self.running.published(7471),
            token=token,
            root_certificates=self.ca,
            **options,
        )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    data = tmp_path_factory.mktemp("datasets")
    tls = make_certificates(tmp_path_factory.mktemp("tls"))
    variables = {**VARIABLES, **TLS_VARIABLES, "THRESHER_DATA_DIR": str(data), "THRESHER_TLS_DIR": str(tls)}
    with ComposeProcesses(COMPOSE, variables, workdir=str(tmp_path_factory.mktemp("compose"))) as running:
        yield Deployment(running, data, str(tls / "ca.pem"))


def test_a_client_session_against_the_compose_services(deployment):
    data = deployment.data
    for i in range(3):
        (data / f"img{i}.png").write_bytes(bytes([i]) * 10)
    namespace = f"team/compose-{os.getpid()}"
    # Published ports, as a client outside the compose network sees them.
    first = deployment.connect(0, "admin-secret")
    second = deployment.connect(1, "viewer-secret")
    ds = datasources.get_or_create(namespace, "images", data, connection=first).wait_until_ready(
        timeout=60, progress=False
    )
    ds.upload_metadata_from_dataframe(
        pd.DataFrame({"path": ["img1.png", "img2.png"], "label": ["cat", "dog"]}),
        path_column="path",
        create_missing=True,
    )
    ds[ds["label"] == "dog"].save_dataset("dogs")

    seen = datasources.get_datasource(namespace, "images", connection=second)
    assert sorted(seen.all().dataframe["path"]) == ["img0.png", "img1.png", "img2.png"]
    assert datasets.get_dataset(namespace, "dogs", connection=second).all().dataframe["path"].tolist() == ["img2.png"]
    with pytest.raises(ThresherError):
        seen.upload_metadata_from_dataframe(
            pd.DataFrame({"path": ["img0.png"], "label": ["x"]}), path_column="path", create_missing=True
        )


def test_flight_endpoints_advertise_addresses_reachable_from_outside(deployment):
    running = deployment.running
    roots = pathlib.Path(deployment.ca).read_bytes()
    options = fl.FlightCallOptions(headers=[(b"authorization", b"Bearer admin-secret")])
    for host_port in (7472, 7473):
        port = running.published(host_port).rsplit(":", 1)[1]
        # As a client outside reaches it: by the host name its certificate carries.
        with fl.connect(f"grpc+tls://localhost:{port}", tls_root_certs=roots) as client:
            infos = list(client.list_flights(options=options))
            assert infos, "the session above saved a datasource and a dataset"
            location = infos[0].endpoints[0].locations[0].uri.decode()
            assert location == f"grpc+tls://localhost:{port}"
            with fl.connect(location, tls_root_certs=roots) as outside:
                assert outside.do_get(infos[0].endpoints[0].ticket, options=options).read_all().num_rows >= 1


def test_compose_services_refuse_callers_without_a_token_or_without_tls(deployment):
    anonymous = deployment.connect(0, "", retry_timeout=0.2)
    with pytest.raises(ThresherError):
        datasources.get_datasources("team/anything", connection=anonymous)
    running = deployment.running
    plaintext = thresher.Connection(
        running.published(7470), running.published(7472), token="admin-secret", retry_timeout=0.2
    )
    with pytest.raises(ThresherError):
        datasources.get_datasources("team/anything", connection=plaintext)


def test_blobs_files_and_an_exported_bag_dataset_through_each_flight_replica(deployment, monkeypatch, tmp_path):
    import boto3

    from thresher.export import PATH_KEY
    from thresher.flight_bytes import file_chunks
    from thresher.sources import Remote

    folder = deployment.data / "exported"
    folder.mkdir()
    files = {f"f{i}.bin": os.urandom(1000 + i) for i in range(5)}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    thumbs = {name: hashlib.sha256(data).digest() * (i + 1) for i, (name, data) in enumerate(files.items())}
    # The S3-compatible store of the deployment, as a client outside reaches it.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{deployment.running.address('s3', 9000)}")
    for key, value in (
        ("AWS_ACCESS_KEY_ID", "thresher"),
        ("AWS_SECRET_ACCESS_KEY", "thresher-secret"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("THRESHER_DOWNLOAD_DIR", str(tmp_path / "downloads"))
    boto3.client("s3").create_bucket(Bucket="exports")

    namespace = f"team/compose-bags-{os.getpid()}"
    admin = deployment.connect(0, "admin-secret")
    ds = datasources.get_or_create(namespace, "files", folder, connection=admin).wait_until_ready(
        timeout=60, progress=False
    )
    ds.upload_metadata_from_dataframe(
        pd.DataFrame({"path": list(thumbs), "thumb": list(thumbs.values()), "label": list(range(len(thumbs)))}),
        path_column="path",
    )
    target = f"s3://exports/{namespace}/train"
    ds.all().export(target, columns=["label"], shardlen=2, progress=False)
    datasets.register_export(namespace, "train", target, connection=admin)

    for replica in (0, 1):
        viewer = deployment.connect(replica, "viewer-secret")
        result = datasources.get_datasource(namespace, "files", connection=viewer).all()
        for name in files:  # blob bytes from the store the metadata replicas wrote, via this flight replica
            assert result[name].get_blob("thumb", cache_on_disk=False) == thumbs[name]
            assert b"".join(file_chunks(viewer, result[name].datasource.id, name)) == files[name]
        downloaded = result.download_files(tmp_path / f"replica{replica}", progress=False)
        assert {p.name: p.read_bytes() for p in pathlib.Path(downloaded).rglob("*") if p.is_file()} == files
        remote = Remote(f"{namespace}/train", connection=viewer, prefetch=0)
        rows = [remote[i] for i in range(len(remote))]
        assert sorted(row[PATH_KEY] for row in rows) == sorted(files)
        assert {row[PATH_KEY]: row["file"] for row in rows} == files
        remote.close()


def test_postgres_runs_with_the_bulk_load_settings_compose_gives_it(deployment):
    import adbc_driver_postgresql.dbapi as adbc_postgres

    from .compose_processes import postgres_settings

    running = deployment.running
    settings = postgres_settings(load_compose(COMPOSE, VARIABLES)["services"]["postgres"]["command"])
    assert {"max_wal_size", "checkpoint_timeout", "shared_buffers", "synchronous_commit"} <= set(settings)
    assert settings["synchronous_commit"] == "on"  # an acknowledged upload stays durable
    with adbc_postgres.connect(f"postgresql://thresher@{running.address('postgres', 5432)}/thresher") as connection:
        with connection.cursor() as cursor:
            for name, value in settings.items():
                cursor.execute(f"SELECT current_setting('{name}')")
                assert cursor.fetchone()[0] == value, name
