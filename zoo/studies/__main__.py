"""``python -m zoo.studies NAME ...`` runs ``zoo study NAME ...``."""

import sys

from zoo.cli import main

sys.exit(main(["study", *sys.argv[1:]]))
