"""SIGINT and SIGTERM handled alike: both raise ``KeyboardInterrupt`` (naming the signal) in the main thread.

SIGTERM is what SLURM, Kubernetes, Ray and ``timeout`` send; with this handler a terminated run ends as
an interrupted one (its record says so, its last checkpoint is kept) instead of dying mid-epoch with a
record that still says ``running``. Inside ``deferred_signals()`` (the saving of a record and its
checkpoint) a signal is held back and takes effect when the block ends.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM)


class _Deferral:
    """How many ``deferred_signals`` blocks are open, and the signal held back meanwhile."""

    depth = 0
    pending: str | None = None


_state = _Deferral()


def _handler(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    if _state.depth:
        _state.pending = name
        return
    raise KeyboardInterrupt(name)


@contextlib.contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Within the context, SIGINT and SIGTERM raise ``KeyboardInterrupt(signal name)``; outside the main
    thread (where Python cannot set handlers) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _handler) for sig in HANDLED}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold back a SIGINT or SIGTERM that arrives within the block; raise it when the block ends."""
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        pending = _state.pending
        if not _state.depth and pending is not None:
            _state.pending = None
            raise KeyboardInterrupt(pending)
