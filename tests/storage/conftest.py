"""Each writable backend as a fresh, empty storage: a local folder, an S3 prefix, a GCS prefix."""

from __future__ import annotations

import pytest

from thresher.core.storage import open_storage


@pytest.fixture(params=["local", "s3", "gcs"])
def storage(request, tmp_path):
    """An empty writable storage of each kind."""
    if request.param == "local":
        uri = str(tmp_path / "root")
    elif request.param == "s3":
        uri = f"s3://{request.getfixturevalue('s3_bucket')}/some/prefix"
    else:
        uri = f"gs://{request.getfixturevalue('gcs_bucket')}/some/prefix"
    with open_storage(uri) as opened:
        yield opened
