"""Escaping user strings (site ids, file names, skip reasons) for the formats outputs are read in.

HTML is escaped with :func:`html.escape` where the report writes it; this
module holds the two rules the standard library lacks:

* :func:`escape_markdown`: text that renders as itself in Markdown
  (``report.md``, ``metrics_*.md``): no raw HTML, links, images or code
  spans, no break of a table cell, no heading or list at its start;
* :func:`guard_csv_formulas`: CSV cells a spreadsheet would evaluate as a
  formula (``=``, ``+``, ``-``, ``@``, tab or carriage return first) get a
  leading ``'``. Only text is guarded: numbers, negative ones included, stay
  numbers, and Parquet outputs stay raw.

Site ids checked by :func:`fluxnet.sites.site_id_problem` cannot hold any of
these characters; the rules are the defence for every other string (reasons,
file names, column names from user files).
"""

from __future__ import annotations

import re

import pandas as pd

_MARKDOWN_ANYWHERE = re.compile(r"([\\`*\[\]<>|~&])")
"""Characters escaped wherever they stand: backslash, code span, emphasis, link/image brackets, HTML, table cell, strike."""
_MARKDOWN_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
"""``_`` that could open or close emphasis (one inside a word, as in ``n_flux_days``, cannot)."""
_MARKDOWN_LINE_START = ("#", "=", "+", "-")
"""Characters that make a heading, a setext underline or a list when a line starts with them."""

FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet evaluate a CSV cell."""
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def escape_markdown(text: object, *, line_start: bool = True) -> str:
    """``text`` as Markdown that renders as the text itself, on one line.

    Line breaks become spaces (a table row or list item is one line); Markdown
    punctuation is backslash-escaped (``<b>`` stays the text ``<b>``,
    ``[x](http://...)`` is no link, ``|`` does not end a table cell). With
    ``line_start`` (text that may begin a line or a list item) a leading ``#``,
    ``=``, ``+`` or ``-`` is escaped too, so the text starts no heading or list;
    a table cell needs no such escape (``-0.5`` stays as written).
    """
    one_line = re.sub(r"\r\n|\r|\n", " ", str(text))
    escaped = _MARKDOWN_UNDERSCORE.sub(r"\\_", _MARKDOWN_ANYWHERE.sub(r"\\\1", one_line))
    return "\\" + escaped if line_start and escaped.startswith(_MARKDOWN_LINE_START) else escaped


def guard_csv_cell(value: object) -> object:
    """``'`` + ``value`` when it is text a spreadsheet would run as a formula; anything else unchanged.

    Text that is a plain number (``-3.5``, ``+1e5``) and a lone ``-`` (our "none") are no formula and stay.
    """
    if (isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and value != "-"
            and not _PLAIN_NUMBER.fullmatch(value)):
        return "'" + value
    return value


def guard_csv_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` whose text cells and column names are guarded (:func:`guard_csv_cell`) for CSV.

    Numeric, boolean and date columns are left as they are, so negative numbers stay numbers.
    """
    out = table.copy()
    names = list(out.columns)
    out.columns = pd.RangeIndex(len(names))  # by position: repeated names stay apart
    for position in out.columns:
        values = out[position]
        if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
            out[position] = values.map(guard_csv_cell)
    out.columns = pd.Index([guard_csv_cell(name) for name in names])
    return out
