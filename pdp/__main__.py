"""``python -m pdp`` runs the command line."""

import sys

from pdp.cli import main

sys.exit(main())
