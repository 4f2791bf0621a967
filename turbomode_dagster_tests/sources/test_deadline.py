"""The hard deadline around blocking calls: result and errors pass through; an overrun is abandoned."""

from __future__ import annotations

import threading
import time

import pytest

from turbomode_dagster.sources._deadline import DeadlineExceeded, call_within


def test_a_call_in_time_returns_its_result_and_raises_its_own_errors():
    assert call_within(1.0, lambda: 42, "answer") == 42
    with pytest.raises(KeyError, match="AAPL"):
        call_within(1.0, lambda: {}["AAPL"], "lookup")


def test_an_overrun_is_abandoned_after_the_deadline_as_a_timeout_error():
    release = threading.Event()
    began = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"Yahoo history of AAPL not done within 0.2 s") as caught:
        call_within(0.2, release.wait, "Yahoo history of AAPL")
    assert 0.2 <= time.monotonic() - began < 1.0
    assert isinstance(caught.value, TimeoutError) and isinstance(caught.value, OSError)  # an outage to the sources
    release.set()
