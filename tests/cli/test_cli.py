"""The `thresher` command as a newcomer runs it: the demo end to end, and `up` stopping on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from thresher.core.transport import open_channel


def _thresher(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "thresher.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {**os.environ, "THRESHER_HOME": str(tmp_path / "home")}


def test_demo_runs_the_whole_flow(env):
    process = _thresher("demo", "--images", "12", env=env)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert "12 datapoints" in output
    assert "identical after reload: True" in output
    for step in ("scan it", "metadata_context", "DoPut", "save the query", "timings"):
        assert step in output, step


def test_up_serves_until_interrupted_then_stops_cleanly(env):
    process = _thresher("up", "--port", "0", env=env)
    addresses = {}
    for line in process.stdout:
        if line.strip().startswith("export "):
            key, value = line.strip().removeprefix("export ").split("=", 1)
            addresses[key] = value
        if "Ctrl-C" in line:
            break
    try:
        channel = open_channel(addresses["THRESHER_METADATA_ADDRESS"])
        grpc.channel_ready_future(channel).result(timeout=30)
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        channel.close()
        assert os.path.exists(os.path.join(env["THRESHER_HOME"], "metadata.duckdb"))
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "stopping" in output
