"""One self-contained HTML report about a trained run (:func:`write_report`)."""

from influrec.report.build import write_report

__all__ = ["write_report"]
