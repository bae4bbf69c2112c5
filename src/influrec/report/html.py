"""The report's HTML: one page with its own style (no script, no font, no request to any
host), sections that say what they measured, and escaped tables.

Every text that comes from data (titles, ids, behaviours, messages) goes through
:func:`html.escape` here or in the builders; SVG charts come from :mod:`influrec.report.svg`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1040px; padding: 0 20px 60px;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 4px; margin-top: 2.2em; }
h3 { margin-bottom: 0.3em; }
nav ol { columns: 2; }
p.what { background: #f4f6f8; border-left: 4px solid #8aa; padding: 8px 12px; }
p.skipped { background: #fff6e0; border-left: 4px solid #d9a400; padding: 8px 12px; }
p.sentence { font-size: 1.08em; font-weight: 600; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.92em; }
th, td { border-bottom: 1px solid #e2e2e2; padding: 4px 10px; text-align: left;
         vertical-align: top; }
th { background: #f6f6f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 4px 18px 12px; margin: 18px 0; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
svg { max-width: 100%; height: auto; }
.small { color: #555; font-size: 0.9em; }
"""


@dataclass(frozen=True)
class Section:
    """One part of the report: its anchor, heading, what it measured (plain words, units)
    and its body (HTML); ``skipped`` says why the part was left out, when it was."""

    anchor: str
    title: str
    what: str
    body: str = ""
    skipped: str | None = None

    def html(self) -> str:
        parts = [f'<section id="{escape(self.anchor)}"><h2>{escape(self.title)}</h2>']
        parts.append(f'<p class="what">{escape(self.what)}</p>')
        if self.skipped:
            parts.append(f'<p class="skipped">Skipped: {escape(self.skipped)}</p>')
        parts.append(self.body)
        return "".join(parts) + "</section>"


def cell(value: object, *, title: str | None = None) -> str:
    """One table cell: numbers right-aligned; ``title`` becomes the hover text."""
    tip = f' title="{escape(title)}"' if title else ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<td class="num"{tip}>{escape(format_number(value))}</td>'
    return f"<td{tip}>{escape(str(value))}</td>"


def format_number(value: float) -> str:
    """Whole numbers with thousands separators; others with four decimals, or four
    significant digits when smaller than 0.001 (TracIn scores)."""
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.4g}"
    return f"{value:.4f}"


def table(header: Sequence[str], rows: Sequence[Sequence[object]], *, caption: str = "") -> str:
    """An HTML table; a row's cells are values or ready ``<td>`` strings from :func:`cell`."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(v if isinstance(v, str) and v.startswith("<td") else cell(v) for v in row)
        + "</tr>"
        for row in rows
    )
    top = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table>{top}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def paragraph(content: str, css: str = "") -> str:
    """An escaped paragraph."""
    kind = f' class="{css}"' if css else ""
    return f"<p{kind}>{escape(content)}</p>"


def page(title: str, intro: str, sections: Sequence[Section]) -> str:
    """The whole document: head with the style, a contents list, then each section."""
    contents = "".join(
        f'<li><a href="#{escape(s.anchor)}">{escape(s.title)}</a>'
        + (" (skipped)" if s.skipped else "")
        + "</li>"
        for s in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>{intro}<nav><ol>{contents}</ol></nav>"
        + "".join(s.html() for s in sections)
        + "</body></html>\n"
    )
