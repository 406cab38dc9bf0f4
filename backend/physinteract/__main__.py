"""``python -m physinteract`` runs the command line."""

import sys

from physinteract.cli import main

sys.exit(main())
