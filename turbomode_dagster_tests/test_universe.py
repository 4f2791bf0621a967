"""The one rule for symbol names, which become file names."""

from __future__ import annotations

import pytest

from turbomode_dagster.universe import DEFAULT_UNIVERSE, symbol_problem


@pytest.mark.parametrize("symbol", [*DEFAULT_UNIVERSE, "BRK.B", "0700", "A" * 15])
def test_real_tickers_pass(symbol: str) -> None:
    assert symbol_problem(symbol) is None


@pytest.mark.parametrize(
    ("symbol", "reason"),
    [
        ("../AAPL", "contains a path separator"),
        ("A/B", "contains a path separator"),
        ("A\\B", "contains a path separator"),
        ("A..B", "contains '..'"),
        ("AAPL\x00", "contains a NUL byte"),
        (".HIDDEN", "is not an upper-case ticker"),
        ("-X", "is not an upper-case ticker"),
        ("aapl", "is not an upper-case ticker"),
        ("A" * 16, "is not an upper-case ticker"),
        ("A B", "is not an upper-case ticker"),
        ("", "is not an upper-case ticker"),
        (None, "is not text"),
    ],
)
def test_names_that_could_escape_a_folder_are_refused_by_name(symbol: object, reason: str) -> None:
    problem = symbol_problem(symbol)
    assert problem is not None and reason in problem and repr(symbol) in problem
