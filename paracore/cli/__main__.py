"""``python -m paracore.cli``: the ``paracore`` command."""

import sys

from paracore.cli import main

sys.exit(main())
