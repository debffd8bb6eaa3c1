"""``python -m rllib_sparse`` is the ``rllib-sparse`` command."""

import sys

from rllib_sparse.cli.main import main

sys.exit(main())
