"""The signals preview: what a person should see first is what they can act on."""

from __future__ import annotations

import pandas as pd

from turbomode_dagster.signals.preview import features_text, signal_counts, signal_preview


def signals(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"symbol": s, "signal": sig, "confidence": c, "top_features": [{"feature": "rsi_14", "contribution": c}]}
            for s, sig, c in rows
        ]
    )


def test_buy_and_sell_come_first_by_confidence_even_below_a_confident_hold() -> None:
    frame = signals(
        [
            ("KO", "HOLD", 0.95),
            ("XOM", "SELL", 0.41),
            ("AAPL", "BUY", 0.62),
            ("JPM", "HOLD", 0.80),
            ("MSFT", "BUY", 0.41),
        ]
    )
    preview = signal_preview(frame, limit=10)
    assert list(preview["symbol"]) == ["AAPL", "MSFT", "XOM", "KO", "JPM"]  # MSFT before XOM: tie, by symbol
    assert list(preview["signal"]) == ["BUY", "BUY", "SELL", "HOLD", "HOLD"]
    assert list(preview.columns) == ["symbol", "signal", "confidence", "top_features"]


def test_the_limit_keeps_the_actionable_rows() -> None:
    frame = signals([(f"H{i}", "HOLD", 0.9) for i in range(30)] + [("AAPL", "BUY", 0.3), ("XOM", "SELL", 0.2)])
    preview = signal_preview(frame, limit=20)
    assert len(preview) == 20
    assert list(preview["symbol"][:2]) == ["AAPL", "XOM"]


def test_the_preview_keeps_the_first_features_and_three_decimals() -> None:
    top = [{"feature": f"f{i}", "contribution": 0.1 * i} for i in range(5)]
    frame = pd.DataFrame([{"symbol": "AAPL", "signal": "BUY", "confidence": 0.61234, "top_features": top}])
    (row,) = signal_preview(frame, limit=5, features=2).to_dict("records")
    assert (row["confidence"], row["top_features"]) == (0.612, "f0 +0.000, f1 +0.100")


def test_counts_name_every_class_even_when_absent() -> None:
    assert signal_counts(signals([("AAPL", "BUY", 0.6), ("MSFT", "BUY", 0.5)])) == {"BUY": 2, "SELL": 0, "HOLD": 0}


def test_top_features_read_as_one_signed_line() -> None:
    line = features_text([{"feature": "rsi_14", "contribution": 0.12}, {"feature": "ret_5d", "contribution": -0.04}])
    assert line == "rsi_14 +0.120, ret_5d -0.040"
