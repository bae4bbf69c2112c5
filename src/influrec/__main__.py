"""``python -m influrec`` (and ``torchrun ... -m influrec``): the ``influrec`` command."""

import sys

from influrec.cli.main import main

sys.exit(main())
