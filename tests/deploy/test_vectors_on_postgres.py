"""The client's end-to-end vector tests, run again over the PostgreSQL store (conftest swaps the services)."""

from tests.client.conftest import make_datasource  # noqa: F401 - a fixture the imported tests use
from tests.client.test_e2e_vectors import *  # noqa: F401,F403
