"""``python -m influrec.config > docs/configuration.md``: print the configuration reference."""

import sys

from influrec.config.reference import reference_markdown

sys.stdout.write(reference_markdown())
