"""``python -m pdp.decision_log``: the feeder process (:mod:`pdp.decision_log.feeder`)."""

import sys

from pdp.decision_log.feeder import main

sys.exit(main())
