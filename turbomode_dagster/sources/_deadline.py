"""A hard deadline around a blocking call whose own timeouts cannot be trusted to bound it end to end.

The call runs in a daemon thread; if it is not done in time the caller stops waiting and gets
`DeadlineExceeded` (a `TimeoutError`, so an `OSError` like any other network failure). The abandoned
thread finishes in the background, so the call should still carry its own per-request timeouts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class DeadlineExceeded(TimeoutError):
    """A call ran past its deadline and was abandoned."""


def call_within(seconds: float, call: Callable[[], T], what: str) -> T:
    """`call()`'s result or exception, or `DeadlineExceeded` naming `what` after `seconds`."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the caller below, never lost in the thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name=f"deadline: {what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise DeadlineExceeded(f"{what} not done within {seconds:g} s; abandoned")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
