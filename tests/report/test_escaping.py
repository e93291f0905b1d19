"""Escaping of user strings in outputs (issue 19): Markdown text and tables, CSV formula guard, HTML tables."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecoembed.escaping import escape_markdown, guard_csv_cell, guard_csv_formulas
from ecoembed.report.common import html_table, md_table, read_table


@pytest.mark.parametrize(("text", "expected"), [
    ("<b>x</b>", r"\<b\>x\</b\>"),
    ("[click](http://evil.example)", r"\[click\](http://evil.example)"),
    ("![img](x.png)", r"!\[img\](x.png)"),
    ("a|b", r"a\|b"),
    ("`code`", r"\`code\`"),
    ("# heading", r"\# heading"),
    ("=== underline", r"\=== underline"),
    ("- list", r"\- list"),
    ("*bold* and _it_", r"\*bold\* and \_it\_"),
    ("back\\slash|", r"back\\slash\|"),
    ("&lt;script&gt;", r"\&lt;script\&gt;"),
    ("two\nlines\r\nhere", "two lines here"),
    ("n_flux_days ZZ_T0", "n_flux_days ZZ_T0"),  # an underscore inside a word opens no emphasis: left as is
    ("ZZ-T0 (NT) 45.5%", "ZZ-T0 (NT) 45.5%"),
])
def test_escape_markdown(text: str, expected: str) -> None:
    assert escape_markdown(text) == expected


def test_escape_markdown_in_a_table_cell_leaves_a_leading_minus() -> None:
    assert escape_markdown("-0.5 [-1, 0]", line_start=False) == r"-0.5 \[-1, 0\]"
    assert escape_markdown("-0.5 [-1, 0]") == r"\-0.5 \[-1, 0\]"


def test_md_table_escapes_text_but_not_numbers() -> None:
    table = pd.DataFrame({"site_id": ["<b>x</b>", "NA"], "reason": ["a|b [l](u)", "#1\nnext"],
                          "r2": [-0.25, np.nan], "n": [3, -4]})
    lines = md_table(table).splitlines()
    assert lines[0] == "| site_id | reason | r2 | n |"
    assert lines[2] == r"| \<b\>x\</b\> | a\|b \[l\](u) | -0.250 | 3 |"
    assert lines[3] == "| NA | #1 next |  | -4 |"
    assert all(line.count("|") - line.count(r"\|") == 5 for line in lines)  # no cell broken or added


def test_html_table_escapes_cells_and_headers() -> None:
    page = html_table(pd.DataFrame({"<i>c</i>": ["<script>x</script>"]}))
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;i&gt;c&lt;/i&gt;" in page


@pytest.mark.parametrize(("cell", "guarded"), [
    ("=1+1", "'=1+1"), ("+cmd", "'+cmd"), ("-A1", "'-A1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("-", "-"), ("-3.5", "-3.5"), ("+1e5", "+1e5"), ("ZZ-T0", "ZZ-T0"), ("", ""), (-3.5, -3.5), (None, None),
])
def test_guard_csv_cell(cell: object, guarded: object) -> None:
    assert guard_csv_cell(cell) == guarded


def test_guard_csv_formulas_keeps_numbers_numbers() -> None:
    table = pd.DataFrame({"site_id": ["NA", "001"], "reason": ["=HYPERLINK(\"http://x\")", "ok"],
                          "bias": [-1.5, 2.0], "n": [-3, 4], "date": pd.to_datetime(["2020-01-01", "2020-01-02"]),
                          "mixed": pd.Series([-2, "@x"], dtype=object), "=col": [1, 2]})
    guarded = guard_csv_formulas(table)
    assert list(guarded["reason"]) == ["'=HYPERLINK(\"http://x\")", "ok"]
    assert list(guarded["mixed"]) == [-2, "'@x"]
    assert guarded["bias"].dtype == float and list(guarded["bias"]) == [-1.5, 2.0]
    assert guarded["n"].dtype == np.int64 and list(guarded["n"]) == [-3, 4]
    assert list(guarded.columns) == ["site_id", "reason", "bias", "n", "date", "mixed", "'=col"]
    assert table["reason"].iloc[0].startswith("=")  # the caller's table is unchanged (parquet stays raw)
    back = pd.read_csv(io.StringIO(guarded.to_csv(index=False)), dtype={"site_id": str}, keep_default_na=False)
    assert list(back["bias"]) == [-1.5, 2.0] and list(back["n"]) == [-3, 4] and list(back["site_id"]) == ["NA", "001"]


def test_report_reads_ids_back_as_written(tmp_path: Path) -> None:
    """A site named NA (or 001) is neither a missing value nor the number 1 when the report reads the run's CSVs."""
    (tmp_path / "metrics_per_site.csv").write_text("site_id,features,r2,nse\nNA,embeddings,0.5,NA\n001,embeddings,,0.1\n")
    table = read_table(tmp_path, "metrics_per_site.csv")
    assert table is not None
    assert list(table["site_id"]) == ["NA", "001"]
    assert table["r2"].isna().tolist() == [False, True] and table["nse"].isna().tolist() == [True, False]
    assert table["r2"].dtype == float
