"""python3 -m hypercore: the same as the `hypercore` command."""

import sys

from hypercore.cli import main

sys.exit(main())
