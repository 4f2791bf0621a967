"""The shared signal rule (scanner signals, backtest entries): thresholds inclusive, BUY/SELL ties HOLD."""

from __future__ import annotations

import numpy as np

from turbomode_dagster.signals import BUY, HOLD, SELL, decide, signal_classes


def test_the_rule_on_hand_checked_rows():
    proba = np.array(
        [
            [0.10, 0.65, 0.25],  # p_buy exactly at the threshold: BUY
            [0.25, 0.65, 0.10],  # the mirror: SELL
            [0.30, 0.40, 0.30],  # a tie between BUY and SELL: HOLD
            [0.10, 0.66, 0.24],  # just under the threshold: HOLD
            [0.40, 0.10, 0.50],  # both likely, BUY likelier
        ]
    )
    chosen, confidence = decide(proba, 0.25)
    assert chosen.tolist() == [BUY, SELL, HOLD, HOLD, BUY]
    assert confidence.tolist() == [0.25, 0.25, 0.40, 0.66, 0.50]
    assert signal_classes(proba[:, 0], proba[:, 2], 0.25).tolist() == chosen.tolist()
