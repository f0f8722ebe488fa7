"""Search cost: wall-clock device-hours and peak memory per phase.

Peak memory: on CUDA the caching allocator's peak (``torch.cuda.max_memory_allocated``, reset at the
start of each phase); on CPU the growth of the process's peak resident set (``VmHWM``, reset at the
start of each phase through ``/proc/self/clear_refs``) over a baseline: the resident size when the
run began (before its data and model existed), or, without one, when the phase began. The allocator
keeps freed memory, so growth within a later phase alone would understate what the run holds.
"""

from __future__ import annotations

import contextlib
import ctypes
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

MIB = 2**20


def _status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _release_free_heap() -> None:
    """Hand memory that the C allocator keeps after ``free`` back to the system (glibc's ``malloc_trim``),
    so that the resident set a phase starts from holds live memory only, not what an earlier phase freed."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to release
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _reset_cpu_peak() -> bool:
    """Reset the kernel's peak-RSS mark for this process (Linux >= 4.0); False where not possible."""
    _release_free_heap()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@dataclass
class PhaseMeter:
    """Wall-clock and peak memory of one phase (an epoch of search, an evaluation).

    ``with PhaseMeter(device) as m: ...`` then ``m.seconds``, ``m.peak_mem_mib`` and ``m.method``.
    """

    device: torch.device
    baseline_kib: int | None = None  # CPU: resident size before the run; None: at the phase's start
    seconds: float = 0.0
    peak_mem_mib: float = float("nan")
    method: str = field(default="")
    _start: float = 0.0
    _base_kib: int = 0

    def __enter__(self) -> PhaseMeter:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.method = "cuda max_memory_allocated"
        else:
            reset = _reset_cpu_peak()
            at_start = self.baseline_kib is None
            self._base_kib = (_status_kib("VmRSS") or 0) if at_start else int(self.baseline_kib or 0)
            base = "phase start" if at_start else "run start"
            self.method = f"cpu peak RSS (VmHWM{'' if reset else ', not reset'}) - RSS at {base}"
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mem_mib = torch.cuda.max_memory_allocated(self.device) / MIB
        else:
            peak = _status_kib("VmHWM")
            if peak is not None:
                self.peak_mem_mib = (peak - self._base_kib) / 1024
        self.seconds = time.perf_counter() - self._start


def current_rss_kib() -> int | None:
    """Resident memory now, after returning freed heap to the system (so it counts live memory only)."""
    _release_free_heap()
    return _status_kib("VmRSS")
