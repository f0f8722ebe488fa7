"""Torch's CPU threads when several nasbench processes share one machine.

torch gives each process a thread per core. Two runs side by side then spin against each other: on a
2-core machine they slowed each other down 27 to 100 times at small shapes. So each process registers here
(one small file per process, in a folder per user): a process given a thread count (``--threads``, or
``OMP_NUM_THREADS`` in its environment) keeps it, and the others share the cores the fixed ones leave,
equally. Each process re-checks its share at every step, so that a run started beside another makes both
shrink, and one that ends gives its cores back.
"""

from __future__ import annotations

import atexit
import os
import tempfile
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import torch

REGISTRY_ENV = "NASBENCH_THREAD_REGISTRY"  # the folder, if not the default one under the temp folder
SHARE = "share"  # what a process that takes a share writes in its file (else its thread count)


def fair_share(cores: int, fixed: Sequence[int], sharing: int) -> int:
    """Threads for each of ``sharing`` processes that share ``cores`` with processes of ``fixed`` thread
    counts: an equal part of what the fixed ones leave, and at least 1."""
    return max(1, (cores - sum(fixed)) // max(sharing, 1))


def registry_folder() -> Path:
    return Path(os.environ.get(REGISTRY_ENV) or Path(tempfile.gettempdir()) / f"nasbench-threads-{os.getuid()}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user holds that pid: not one of ours, but alive
        return True
    return True


class ThreadRegistry:
    """This process's entry in the registry, and its share of the cores."""

    def __init__(self, folder: Path, cores: int, threads: int | None, pid: int | None = None) -> None:
        # threads: this process's fixed count, or None: it takes a share
        self.folder, self.cores, self.threads, self.pid = folder, cores, threads, pid or os.getpid()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / str(self.pid)).write_text(SHARE if threads is None else str(threads))

    def entries(self) -> dict[int, str]:
        """Live processes' entries; the files of processes that are gone are removed."""
        out = {}
        for path in self.folder.iterdir():
            if not path.name.isdigit():
                continue
            pid = int(path.name)
            if pid != self.pid and not alive(pid):
                with suppress(FileNotFoundError):
                    path.unlink()
                continue
            with suppress(FileNotFoundError):
                out[pid] = path.read_text().strip()
        return out

    def share(self) -> int:
        values = self.entries().values()
        fixed = [int(v) for v in values if v.isdigit()]
        return fair_share(self.cores, fixed, sum(v == SHARE for v in values))

    def rebalance(self) -> None:
        """Take this process's share now (a process with a fixed count keeps it)."""
        if self.threads is None:
            threads = self.share()
            if threads != torch.get_num_threads():
                torch.set_num_threads(threads)

    def close(self) -> None:
        with suppress(FileNotFoundError):
            (self.folder / str(self.pid)).unlink()


_registered: ThreadRegistry | None = None
_cores = torch.get_num_threads()  # torch's own default, before anything here changes it


def register(threads: int | None) -> None:
    """Enter this process in the registry: with ``threads`` fixed, or (None) to take a share of the cores."""
    global _registered
    if _registered is not None:
        _registered.close()
    else:
        atexit.register(lambda: _registered.close() if _registered is not None else None)
    try:
        _registered = ThreadRegistry(registry_folder(), _cores, threads)
    except OSError:  # no writable temp folder: keep torch's threads as they are
        _registered = None
        return
    _registered.rebalance()


def rebalance() -> None:
    """Re-take this process's share of the cores, if it takes one (called at every step: a few files read)."""
    if _registered is not None:
        with suppress(OSError):
            _registered.rebalance()
