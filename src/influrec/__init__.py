"""influrec: behaviour-sequence recommendation with measured influence."""

__version__ = "0.1.0"
