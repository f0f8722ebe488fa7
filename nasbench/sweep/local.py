"""The local launcher: a pool of long-lived worker processes on this machine, one cell at a time each.

Each worker is started once (so torch is imported once, not once per cell) with its thread count and,
on a machine with GPUs, its own GPU (``CUDA_VISIBLE_DEVICES``). A worker that dies (out of memory, a
crash in native code) is replaced; its cell's record then says ``running`` with nobody holding it, and
the next sweep resumes it. Workers get SIGTERM when the sweep process dies, so a killed sweep loses at
most the epochs in progress. Ctrl-C reaches the workers with the terminal's SIGINT; a SIGTERM sent to
the sweep alone is passed on to them.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from nasbench.signals import interrupt_on_signals
from nasbench.sweep.cell import Outcome, cell_state, run_cell
from nasbench.sweep.grid import Cell

STOP_WAIT_S = 120  # how long interrupted workers get to save their records before they are killed
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: SIGTERM this process when its parent dies (a killed sweep must not leave orphans running)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def worker_main(conn: Connection, root: str, threads: int, device: str, retry_failed: bool) -> None:
    """A worker: receive cells, run each, send back its outcome; stop on None or after an interrupt."""
    _die_with_parent()
    from nasbench.cli_flags import apply_threads

    apply_threads(threads)
    with interrupt_on_signals():
        try:
            while True:
                message = conn.recv()
                if message is None:
                    return
                outcome = run_cell(Cell.from_dict(message), Path(root), device, retry_failed)
                conn.send(outcome.to_dict())
                if outcome.state == "interrupted":
                    return
        except (KeyboardInterrupt, EOFError, BrokenPipeError):
            return


@dataclass
class Slot:
    """One worker process and the cell it is running (None: idle)."""

    env: dict[str, str]
    process: Any = None
    conn: Connection | None = None
    cell: Cell | None = None


class LocalLauncher:
    def __init__(
        self, root: Path, workers: int, threads: int, gpus: list[str] | None, device: str, retry_failed: bool
    ) -> None:
        self.root, self.threads, self.device, self.retry_failed = Path(root), threads, device, retry_failed
        thread_env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        self.slots = [
            Slot({**thread_env, **({"CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)]} if gpus else {})})
            for i in range(workers)
        ]

    def _start(self, slot: Slot) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        saved = {k: os.environ.get(k) for k in slot.env}
        os.environ.update(slot.env)  # a spawned process takes the environment as it is at start
        try:
            slot.process = ctx.Process(
                target=worker_main,
                args=(child, str(self.root), self.threads, self.device, self.retry_failed),
                daemon=True,
            )
            slot.process.start()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        child.close()
        slot.conn = parent

    def run(self, cells: list[Cell], on_done: Callable[[Outcome], None]) -> None:
        pending = deque(cells)
        with interrupt_on_signals():
            try:
                while pending or any(s.cell is not None for s in self.slots):
                    for slot in self.slots:
                        if slot.cell is None and pending:
                            if slot.process is None or not slot.process.is_alive():
                                self._start(slot)
                            slot.cell = pending.popleft()
                            assert slot.conn is not None
                            slot.conn.send(slot.cell.to_dict())
                    self._collect(on_done, timeout=1.0)
            except KeyboardInterrupt as exc:
                self._interrupt(on_done, forward=bool(exc.args) and exc.args[0] == "SIGTERM")
                raise
            finally:
                self._stop()

    def _collect(self, on_done: Callable[[Outcome], None], timeout: float) -> None:
        busy = [s for s in self.slots if s.cell is not None]
        ready = wait([s.conn for s in busy if s.conn] + [s.process.sentinel for s in busy], timeout=timeout)
        for slot in busy:
            if slot.conn in ready or slot.process.sentinel in ready:
                on_done(self._outcome(slot))

    def _outcome(self, slot: Slot) -> Outcome:
        """The outcome the worker sent, or (the worker died) the cell's state as its folder tells it."""
        cell, slot.cell = slot.cell, None
        assert cell is not None and slot.conn is not None
        try:
            if slot.conn.poll():
                return Outcome.from_dict(slot.conn.recv())
        except (EOFError, OSError):
            pass
        slot.process.join(timeout=5)
        code = slot.process.exitcode
        slot.process = None
        return Outcome(cell, cell_state(self.root, cell), f"the worker process died (exit code {code})")

    def _interrupt(self, on_done: Callable[[Outcome], None], forward: bool) -> None:
        """Let the running cells save their records as interrupted, and report them."""
        if forward:
            for slot in self.slots:
                if slot.cell is not None and slot.process is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(slot.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        while any(s.cell is not None for s in self.slots) and time.monotonic() < deadline:
            with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C while the workers save
                self._collect(on_done, timeout=1.0)

    def _stop(self) -> None:
        for slot in self.slots:
            if slot.process is None:
                continue
            with contextlib.suppress(OSError, BrokenPipeError):
                assert slot.conn is not None
                slot.conn.send(None)
            slot.process.join(timeout=10)
            if slot.process.is_alive():
                slot.process.terminate()
                slot.process.join(timeout=10)
            slot.process = None
