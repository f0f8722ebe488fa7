"""Fault injection on real runs: kill -9 and SIGTERM at random moments, two resumers on one folder.

Each run is ``nasbench run`` in its own process, as a user or a scheduler starts it. After every fault
the folder must hold a readable record, a checkpoint that loads (once one epoch is done) and agrees
with the record, and ``--resume`` must end in the result of a run that was never interrupted.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nasbench.rundir import CHECKPOINT, RECORD

RUN = [sys.executable, "-m", "nasbench", "run", "--searcher", "darts1", "--space", "nb201", "--preset", "tiny"]
SETTINGS = ["--epochs", "3", "--set", "hessian_every=2", "--threads", "1", "--quiet"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
COMPARED = ("train_loss", "val_loss", "genotype", "true_test_acc")


def start(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*RUN, *SETTINGS, "--out", str(out), *extra], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def results(record: dict) -> list:
    return [[epoch[k] for k in COMPARED] for epoch in record["epochs"]] + [record["genotype"]]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    started = time.monotonic()
    proc = start(out)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    (record,) = out.rglob(RECORD)
    return {**json.loads(record.read_text()), "wall_s": time.monotonic() - started}


def check_consistent(folder: Path) -> dict | None:
    """The folder after a fault: a record that parses, and a checkpoint that loads safely and is at most the
    one epoch ahead of the record (the two are written in that order)."""
    record = json.loads((folder / RECORD).read_text()) if (folder / RECORD).exists() else None
    if (folder / CHECKPOINT).exists():
        state = torch.load(folder / CHECKPOINT, weights_only=True)
        assert record is not None, "a checkpoint without its record"
        ahead = len(state["record"]["epochs"]) - len(record["epochs"])
        assert ahead in (0, 1), f"checkpoint {ahead} epochs ahead of the record"
        assert state["record"]["epochs"][: len(record["epochs"])] == record["epochs"]
    elif record is not None:
        assert not record["epochs"], "epochs in the record but no checkpoint"
    assert not list(folder.glob(".*.tmp")), "temporary files left behind"
    return record


def run_with_faults(out: Path, faults: int, rng: random.Random, window_s: float) -> tuple[dict, int]:
    """Start a run, and ``faults`` times kill it (-9 or SIGTERM) at a moment drawn from ``window_s`` seconds
    after its start, checking the folder and resuming it each time; then let it finish. Its final record and
    the number of faults it took."""
    proc, done = start(out), 0
    while done < faults:
        try:
            proc.wait(timeout=rng.uniform(0.5, window_s))
            break  # it finished before the moment drawn
        except subprocess.TimeoutExpired:
            proc.send_signal(rng.choice([signal.SIGKILL, signal.SIGTERM]))
            proc.wait(timeout=60)
            done += 1
        folders = list((out / "nb201").iterdir()) if (out / "nb201").exists() else []
        assert len(folders) <= 1
        record = check_consistent(folders[0]) if folders else None
        if record is not None and record["status"] == "completed":
            return record, done  # the signal came as it finished (its exit status is the signal's)
        if folders and (folders[0] / CHECKPOINT).exists():
            assert record["status"] in ("interrupted", "running")  # running: killed by -9
            proc = start(out, "--resume", str(folders[0]))
        else:  # stopped before its first epoch was saved: nothing to resume; a new run
            for folder in folders:
                shutil.rmtree(folder)
            proc = start(out)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    (final,) = out.rglob(RECORD)
    return json.loads(final.read_text()), done


def test_killed_and_terminated_runs_resume_to_the_uninterrupted_result(tmp_path, uninterrupted):
    rng = random.Random(17)
    record, faults = run_with_faults(tmp_path, faults=2, rng=rng, window_s=uninterrupted["wall_s"])
    assert faults >= 1 and record["status"] == "completed" and results(record) == results(uninterrupted)


@pytest.mark.slow
def test_many_faults_at_random_moments(tmp_path, uninterrupted):
    rng = random.Random(3)
    for attempt in range(5):
        record, _ = run_with_faults(tmp_path / str(attempt), faults=4, rng=rng, window_s=uninterrupted["wall_s"])
        assert record["status"] == "completed" and results(record) == results(uninterrupted)


def test_two_resumers_of_one_folder_one_runs_and_the_other_is_told_who(tmp_path, uninterrupted):
    out = tmp_path / "runs"
    proc = start(out)
    folder = None
    deadline = time.monotonic() + 120
    while folder is None and time.monotonic() < deadline:
        found = list(out.rglob(CHECKPOINT))
        folder = found[0].parent if found else None
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    first, second = start(out, "--resume", str(folder)), start(out, "--resume", str(folder))
    codes = sorted([first.wait(timeout=300), second.wait(timeout=300)])
    refused = next(p for p in (first, second) if p.returncode == 2)
    assert codes == [0, 2]
    assert "is in use by process" in refused.stderr.read().decode()
    record = json.loads((folder / RECORD).read_text())
    assert record["status"] == "completed" and results(record) == results(uninterrupted)
