"""``python -m thresher.cli``: the same as the ``thresher`` command."""

import sys

from thresher.cli.app import main

sys.exit(main())
