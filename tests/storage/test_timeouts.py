"""Storage timeouts and retries from the environment (thresher.core.storage.timeouts), and where they apply."""

from __future__ import annotations

import pytest

from thresher.core.storage import StorageConfigError, StorageTimeouts, open_storage
from thresher.core.storage.timeouts import timeout_kind


def test_defaults_and_settings_are_read_from_the_environment():
    assert StorageTimeouts.from_env({}) == StorageTimeouts(connect=10.0, read=60.0, retries=3, deadline=60.0)
    settings = StorageTimeouts.from_env(
        {
            "THRESHER_STORAGE_CONNECT_TIMEOUT": "0.5",
            "THRESHER_STORAGE_READ_TIMEOUT": "7",
            "THRESHER_STORAGE_RETRIES": "0",
            "THRESHER_STORAGE_RETRY_DEADLINE": "9",
        }
    )
    assert settings == StorageTimeouts(connect=0.5, read=7.0, retries=0, deadline=9.0)
    assert settings.attempts == 1 and settings.pair == (0.5, 7.0)


@pytest.mark.parametrize(
    "name, value",
    [
        ("THRESHER_STORAGE_READ_TIMEOUT", "soon"),
        ("THRESHER_STORAGE_CONNECT_TIMEOUT", "0"),
        ("THRESHER_STORAGE_RETRY_DEADLINE", "inf"),
        ("THRESHER_STORAGE_RETRIES", "-1"),
        ("THRESHER_STORAGE_RETRIES", "1.5"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(name, value):
    with pytest.raises(StorageConfigError, match=rf"\${name} must be .*{value!r}"):
        StorageTimeouts.from_env({name: value})


def test_an_s3_storage_opened_after_a_change_uses_the_new_settings(s3_endpoint, monkeypatch):
    monkeypatch.setenv("THRESHER_STORAGE_READ_TIMEOUT", "3")
    monkeypatch.setenv("THRESHER_STORAGE_RETRIES", "2")
    config = open_storage("s3://bucket/p").client.meta.config
    assert (config.read_timeout, config.connect_timeout, config.retries["total_max_attempts"]) == (3.0, 10.0, 3)
    monkeypatch.setenv("THRESHER_STORAGE_READ_TIMEOUT", "4")
    assert open_storage("s3://bucket/p").client.meta.config.read_timeout == 4.0
    monkeypatch.setenv("THRESHER_STORAGE_RETRIES", "many")
    with pytest.raises(StorageConfigError, match="THRESHER_STORAGE_RETRIES"):
        open_storage("s3://bucket/p")


def test_a_gcs_storage_passes_its_timeouts_and_bounds_its_attempts(gcs_endpoint, monkeypatch):
    monkeypatch.setenv("THRESHER_STORAGE_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("THRESHER_STORAGE_READ_TIMEOUT", "5")
    monkeypatch.setenv("THRESHER_STORAGE_RETRIES", "2")
    storage = open_storage("gs://bucket/p")
    assert storage._timeout == (2.0, 5.0)
    calls = []

    def failing():
        calls.append(1)
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError):
        storage._retry.with_delay(initial=0.001, maximum=0.001)(failing)()
    assert len(calls) == 3
    monkeypatch.setenv("THRESHER_STORAGE_RETRIES", "0")
    assert open_storage("gs://bucket/p")._retry is None


def test_timeouts_are_told_from_refused_connections():
    import requests
    import urllib3

    refused = urllib3.exceptions.NewConnectionError(None, "Connection refused")
    assert timeout_kind(requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", refused))) is None
    assert timeout_kind(requests.ConnectTimeout("connect timed out")) == "connect"
    wrapped = requests.ConnectionError(urllib3.exceptions.ReadTimeoutError(None, "/", "Read timed out."))
    assert timeout_kind(wrapped) == "read"
    assert timeout_kind(ValueError("no")) is None
