"""``python -m zoo``: the zoo command line (see :mod:`zoo.cli`)."""

from zoo.cli import main

raise SystemExit(main())
