"""``python -m zoo.studies NAME ...`` runs ``zoo study NAME ...``."""

import sys

from zoo.studies.cli import main

sys.exit(main())
