"""The time-travel tests (as_of, history, changes), run again over the PostgreSQL store (conftest swaps the services)."""

from tests.versioning.test_time_travel import *  # noqa: F401,F403
