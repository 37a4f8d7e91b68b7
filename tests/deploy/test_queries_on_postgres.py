"""The client's end-to-end query tests, run again over the PostgreSQL store (conftest swaps the services)."""

from tests.client.test_e2e_queries import *  # noqa: F401,F403
