"""``python -m models.evaluation``: the evaluation suite (see :mod:`models.evaluation.cli`)."""

import sys

from models.evaluation.cli import main

sys.exit(main())
