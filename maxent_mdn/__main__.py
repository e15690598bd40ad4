"""``python -m maxent_mdn`` runs the command-line interface."""

from .cli import main

raise SystemExit(main())
