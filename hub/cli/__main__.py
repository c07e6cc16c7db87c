"""`python -m xinlian.hub.cli` runs the `xinlian` command."""

import sys

from . import main

sys.exit(main())
