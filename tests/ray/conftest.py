"""A real Ray cluster (a local head with 2 CPUs) and services whose results come in small partitions."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile

import pytest

from tests.export.conftest import make_image_source

ray = pytest.importorskip("ray")

# Small enough that a 20-datapoint result comes in several partitions, one Flight endpoint each.
ROWS_PER_PARTITION = 7
_names = itertools.count()


@pytest.fixture(scope="module")
def ray_services(tmp_path_factory):
    """The three services, in-process, with a partition size of ROWS_PER_PARTITION rows."""
    from thresher.local_services import LocalServices

    home = tmp_path_factory.mktemp("ray-services")
    saved = {name: os.environ.get(name) for name in ("THRESHER_FLIGHT_PARTITION_ROWS", "THRESHER_STAGING_DIR")}
    os.environ["THRESHER_FLIGHT_PARTITION_ROWS"] = str(ROWS_PER_PARTITION)
    os.environ["THRESHER_STAGING_DIR"] = str(home / "staging")
    try:
        with LocalServices(home=str(home)) as services:
            yield services
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray head with 2 CPUs and a 200 MB object store, shut down after the session.

    One head for all the Ray tests: starting a second one right after the first shut down failed once
    in a few runs here, and each start costs seconds."""
    # A short folder of its own: Ray's socket paths must stay under the OS limit, and other runs keep theirs.
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    try:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=200 * 1024 * 1024,
            _temp_dir=temp,
            log_to_driver=False,
            configure_logging=False,
        )
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def images(ray_services, namespace, tmp_path):
    """Makes a scanned datasource of ``count`` PNG images ``img/NN.png`` with ``label``, ``x`` and ``note``."""
    conn = ray_services.connect()

    def make(count: int = 20):
        return make_image_source(conn, namespace, tmp_path / f"images{next(_names)}", count, note_field="note")

    return make
