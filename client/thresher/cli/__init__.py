"""The ``thresher`` command (Click + Rich): services, listing, scans, queries, SQL, exports, downloads, tokens.

``main`` runs it and turns every user error into one line on stderr and exit status 2, never a
traceback; ``thresher --help`` and ``thresher COMMAND --help`` describe each command.
"""

from thresher.cli.app import main

__all__ = ["main"]
