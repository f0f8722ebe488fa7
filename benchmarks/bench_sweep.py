"""The sweep's cost: its own overhead per cell, and what a second worker buys on a CPU.

Eight small NAS-Bench-201 cells (darts1 at the tiny shape with 16 steps an epoch, seeds 0-7, no eigenvalue)
are run three ways, each in a fresh process with one thread per run: one after another by
``nasbench.runner.run`` in one process (no sweep), by ``nasbench sweep --workers 1`` and by
``nasbench sweep --workers 2``. The overhead per cell is the
one-worker sweep's wall time less the direct runs', over the cells: the worker's start-up and the table at
the end, shared out (targets: under 1 s; the two-worker sweep in about half the one-worker time on two
cores).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from nasbench.results import RunRecord

from .conftest import SUMMARY

CELLS = 8
SWEEP = ["--searchers", "darts1", "--spaces", "nb201", "--seeds", f"0-{CELLS - 1}", "--preset", "tiny"]
# 16 steps an epoch (the tiny preset takes 2): seconds of work a cell, so that the cells, not the start-up of
# the processes, dominate and a second worker has something to share
SETTINGS = ["--set", "hessian_every=0", "steps_per_epoch=16", "--threads", "1", "--quiet"]
DIRECT = f"""
import sys
from pathlib import Path
from nasbench.testing import tiny_config
from nasbench.runner import run
for seed in range({CELLS}):
    run(tiny_config("darts1", "nb201", seed=seed, hessian_every=0, steps_per_epoch=16), Path(sys.argv[1]) / str(seed),
        progress=False, echo=lambda line: None)
"""


def wall_seconds(args: list[str]) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def cell_seconds(out: Path) -> float:
    """The cells' search time, summed over their epochs as their records give it."""
    return sum(e["seconds"] for path in out.rglob("record.json") for e in RunRecord.load(path).epochs)


def test_sweep_overhead_and_two_workers(benchmark, tmp_path: Path):
    times: dict[str, float] = {}

    def once() -> None:
        times["direct_s"] = wall_seconds(["-c", DIRECT, str(tmp_path / "direct")])
        for workers in (1, 2):
            out = tmp_path / f"workers{workers}"
            times[f"workers{workers}_s"] = wall_seconds(
                ["-m", "nasbench", "sweep", *SWEEP, *SETTINGS, "--out", str(out), "--workers", str(workers)]
            )
            assert len(list(out.rglob("record.json"))) == CELLS

    wall_seconds(["-c", DIRECT, str(tmp_path / "warm-up")])  # imports and kernels warm in the page cache
    benchmark.pedantic(once, rounds=1, iterations=1, warmup_rounds=0)  # minutes: one round
    info = {
        **times,
        "cells": CELLS,
        "overhead_per_cell_s": (times["workers1_s"] - times["direct_s"]) / CELLS,
        "two_over_one_worker_wall": times["workers2_s"] / times["workers1_s"],
        # each cell's own search time with a second worker beside it, over alone: what the cores share costs
        "cell_time_two_over_one_worker": cell_seconds(tmp_path / "workers2") / cell_seconds(tmp_path / "workers1"),
    }
    benchmark.extra_info.update(info)
    SUMMARY["sweep/darts1-nb201-tiny-x8"] = {"median_s": times["workers1_s"], **info}
