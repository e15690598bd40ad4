"""``python -m maxent_mdn`` (and ``torchrun -m maxent_mdn``): the ``maxent-mdn`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
