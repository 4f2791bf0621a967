"""Probabilities -> trading signals: the one rule the overnight scanner and the backtests share (pure)."""

from turbomode_dagster.signals.rule import BUY, HOLD, SELL, decide, signal_classes

__all__ = ["BUY", "HOLD", "SELL", "decide", "signal_classes"]
