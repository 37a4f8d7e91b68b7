"""S3 and GCS specifics: endpoints, credentials, buckets that are missing, URLs that can be fetched."""

from __future__ import annotations

import urllib.request

import pytest

from tests.storage_endpoints import free_port
from thresher.core.storage import (
    StorageAccessDeniedError,
    StorageError,
    StorageNotFoundError,
    StorageUnavailableError,
    open_storage,
)
from thresher.core.storage.gcs import GCSStorage
from thresher.core.storage.s3 import S3Storage


def test_s3_missing_bucket_is_named(s3_endpoint):
    storage = open_storage("s3://no-such-bucket-here/prefix")
    with pytest.raises(StorageNotFoundError, match="S3 bucket 'no-such-bucket-here' does not exist"):
        list(storage.list())
    with pytest.raises(StorageNotFoundError, match="S3 bucket 'no-such-bucket-here' does not exist"):
        storage.read("x.bin")
    with pytest.raises(StorageNotFoundError, match="no-such-bucket-here"):
        storage.stat("x.bin")


def test_s3_unreachable_endpoint(s3_endpoint):
    url = f"http://127.0.0.1:{free_port()}"
    storage = S3Storage("bucket", client=_client_for(url))
    with pytest.raises(StorageUnavailableError, match=f"cannot reach the S3 endpoint {url}.*s3://bucket/a.bin"):
        storage.read("a.bin")
    with pytest.raises(StorageUnavailableError, match="objects under s3://bucket/"):
        list(storage.list())


def _client_for(url: str):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=url, region_name="us-east-1", config=Config(retries={"max_attempts": 1}, connect_timeout=2)
    )


def test_s3_access_denied_is_mapped(s3_bucket):
    from botocore.stub import Stubber

    storage = open_storage(f"s3://{s3_bucket}/p")
    # moto grants everything, so the refusal is stubbed: what is tested is that it is named, not raised raw.
    with Stubber(storage.client) as stub:
        stub.add_client_error("get_object", service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(StorageAccessDeniedError, match=f"access denied to s3://{s3_bucket}/p/secret.bin"):
            storage.read("secret.bin")
        stub.add_client_error("list_objects_v2", service_error_code="InvalidAccessKeyId", http_status_code=403)
        with pytest.raises(StorageAccessDeniedError, match="InvalidAccessKeyId"):
            list(storage.list())


def test_s3_without_credentials(s3_endpoint, monkeypatch):
    import boto3
    from botocore.config import Config

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = boto3.session.Session().client(
        "s3", endpoint_url=s3_endpoint.url, region_name="us-east-1", config=Config(retries={"max_attempts": 1})
    )
    with pytest.raises(StorageAccessDeniedError, match="no AWS credentials found"):
        S3Storage("bucket", client=client).read("a.bin")


def test_s3_presigned_url_fetches_the_object(s3_bucket):
    storage = open_storage(f"s3://{s3_bucket}/data")
    storage.write("a b/c.txt", b"presigned bytes")
    url = storage.url("a b/c.txt", expires=60)
    assert "Signature" in url or "X-Amz-Signature" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"presigned bytes"


def test_s3_endpoint_override_argument(s3_bucket, s3_endpoint):
    storage = S3Storage(s3_bucket, "x", endpoint_url=s3_endpoint.url)
    storage.write("k", b"v")
    assert storage.client.meta.endpoint_url == s3_endpoint.url and storage.read("k") == b"v"


def test_gcs_missing_bucket_is_named(gcs_endpoint):
    storage = open_storage("gs://no-such-gcs-bucket/prefix")
    with pytest.raises(StorageNotFoundError, match="GCS bucket 'no-such-gcs-bucket' does not exist"):
        list(storage.list())
    with pytest.raises(StorageNotFoundError, match="GCS bucket 'no-such-gcs-bucket' does not exist"):
        storage.read("x.bin")


def test_gcs_unreachable_endpoint(gcs_endpoint):
    url = f"http://127.0.0.1:{free_port()}"
    storage = GCSStorage("bucket", endpoint_url=url, retry_deadline=0.5)
    with pytest.raises(StorageUnavailableError, match="cannot reach the GCS endpoint .*gs://bucket/a.bin"):
        storage.read("a.bin")
    with pytest.raises(StorageUnavailableError, match="objects under gs://bucket/"):
        list(storage.list())


def test_gcs_refusals_are_mapped(gcs_bucket):
    from google.api_core import exceptions as gx

    from thresher.core.storage.gcs import _storage_error

    # The emulator checks no credentials, so the refusals it would send are mapped directly.
    storage = open_storage(f"gs://{gcs_bucket}/p")
    denied = _storage_error(storage, gx.Forbidden("caller does not have storage.objects.get access"), "s.bin", False)
    assert isinstance(denied, StorageAccessDeniedError) and f"gs://{gcs_bucket}/p/s.bin" in str(denied)
    unauthorized = _storage_error(storage, gx.Unauthorized("invalid credentials"), "s.bin", False)
    assert isinstance(unauthorized, StorageAccessDeniedError)
    other = _storage_error(storage, gx.InternalServerError("boom"), "s.bin", False)
    assert type(other) is StorageError and "boom" in str(other)


def test_gcs_url_without_signing_credentials_is_none(gcs_bucket):
    storage = open_storage(f"gs://{gcs_bucket}")
    storage.write("a.txt", b"a")
    assert storage.url("a.txt") is None  # anonymous credentials cannot sign: the flight URL serves instead


def test_unknown_scheme_and_bad_uris():
    from thresher.core.storage import InvalidStorageUriError

    with pytest.raises(InvalidStorageUriError, match="unsupported storage scheme ftp://"):
        open_storage("ftp://host/x")
    with pytest.raises(InvalidStorageUriError, match="names no bucket"):
        open_storage("s3:///x")
    with pytest.raises(InvalidStorageUriError, match="not host 'elsewhere'"):
        open_storage("file://elsewhere/x")
