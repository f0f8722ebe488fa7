"""``nasbench sweep`` with the local launcher, as a user runs it: skip, resume, retry, a killed sweep, two at once."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nasbench.cli import main
from nasbench.results import RunRecord
from nasbench.sweep.manifest import MANIFEST

TINY = ["sweep", "--spaces", "nb201", "--preset", "tiny", "--workers", "1", "--threads", "1", "--device", "cpu"]
TIMINGS = ("seconds", "peak_mem_mib", "hessian_seconds")


def records(root: Path) -> dict[str, RunRecord]:
    return {str(p.parent.relative_to(root)): RunRecord.load(p) for p in sorted(root.rglob("record.json"))}


def comparable(record: RunRecord):
    return [{k: v for k, v in e.items() if k not in TIMINGS} for e in record.epochs], record.genotype


def sweep_process(out: Path, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "nasbench", *TINY, "--out", str(out), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_sweep_runs_every_cell_writes_a_manifest_and_skips_completed_cells_when_run_again(tmp_path, capsys):
    args = [*TINY, "--searchers", "darts1,random", "--seeds", "0-1", "--out", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    found = records(tmp_path)
    assert sorted(found) == [
        "nb201/darts1-tiny-seed0",
        "nb201/darts1-tiny-seed1",
        "nb201/random-tiny-seed0",
        "nb201/random-tiny-seed1",
    ]
    assert all(r.status == "completed" for r in found.values())
    assert "[4/4] completed" in out and "true_test_acc" in out and "cells: 4 completed, 0 failed, 0 left" in out
    assert "| DARTS (first order)" in out and "| Random search" in out  # the comparison table of the grid
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert {entry["state"] for entry in manifest["cells"].values()} == {"completed"} and len(manifest["cells"]) == 4
    before = {k: r.finished_at for k, r in found.items()}

    assert main(args) == 0
    out = capsys.readouterr().out
    assert "(0 to run; skipped: 4 completed)" in out
    assert {k: r.finished_at for k, r in records(tmp_path).items()} == before  # nothing was run again


def test_failed_cells_are_retried_only_when_asked(tmp_path, capsys):
    args = [
        *TINY,
        "--searchers",
        "darts1",
        "--seeds",
        "0",
        "--out",
        str(tmp_path),
        "--set",
        "w_lr=1e30",
        "grad_clip=1e38",
    ]
    assert main(args) == 1  # a NaN loss fails the cell; the sweep says so in its exit status
    (record,) = records(tmp_path).values()
    assert record.status == "failed" and "non-finite" in record.error
    assert "1 failed" in capsys.readouterr().out
    assert main(args) == 1
    assert "(0 to run; skipped: 1 failed)" in capsys.readouterr().out
    assert main([*args, "--retry-failed"]) == 1
    assert "(1 to run)" in capsys.readouterr().out


def test_cells_that_cannot_run_are_named_before_anything_runs(tmp_path, capsys):
    args = [*TINY, "--searchers", "darts1,random", "--seeds", "0", "--out", str(tmp_path), "--set", "oracle=true"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "nb201 darts1 (tiny oracle=true) seed 0" in err and "unknown key 'oracle'" in err
    assert not list(tmp_path.rglob("record.json"))


def test_a_killed_sweep_resumes_to_the_records_of_an_uninterrupted_one(tmp_path):
    cells = ["--searchers", "darts1", "--seeds", "0-1", "--epochs", "4"]
    straight = sweep_process(tmp_path / "a", *cells)
    assert straight.wait(timeout=300) == 0, straight.stdout.read() if straight.stdout else ""

    killed = sweep_process(tmp_path / "b", *cells)
    first = tmp_path / "b" / "nb201" / "darts1-tiny-e4-seed0" / "record.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (first.exists() and RunRecord.load(first).epochs):
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)  # the sweep itself dies; its worker is told by the kernel
    killed.wait(timeout=30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and RunRecord.load(first).status == "running":
        time.sleep(0.1)
    assert RunRecord.load(first).status in ("interrupted", "completed")

    resumed = sweep_process(tmp_path / "b", *cells)
    assert resumed.wait(timeout=300) == 0
    a, b = records(tmp_path / "a"), records(tmp_path / "b")
    assert sorted(a) == sorted(b) and all(r.status == "completed" for r in b.values())
    assert {k: comparable(r) for k, r in a.items()} == {k: comparable(r) for k, r in b.items()}


def test_two_sweeps_on_one_folder_never_run_the_same_cell_at_once(tmp_path):
    cells = ["--searchers", "darts1,random", "--seeds", "0-2"]
    one, two = sweep_process(tmp_path, *cells), sweep_process(tmp_path, *cells)
    outputs = [p.communicate(timeout=600)[0] for p in (one, two)]
    assert [p.returncode for p in (one, two)] == [0, 0], outputs
    found = records(tmp_path)
    assert len(found) == 6 and all(r.status == "completed" for r in found.values())
    for name in found:
        log = (tmp_path / name / "log.txt").read_text()
        assert log.count("run folder:") == 1, name  # each cell was run by one sweep, once
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert len(manifest["cells"]) == 6 and manifest["counts"] == {"completed": 6}


def test_default_workers_and_threads_never_oversubscribe(monkeypatch):
    from argparse import Namespace

    from nasbench.sweep.command import workers_and_threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    args = Namespace(workers=None, threads=None, launcher="local")
    assert workers_and_threads(args, todo=20, gpus=[]) == (8, 1)
    assert workers_and_threads(args, todo=3, gpus=[]) == (3, 2)
    assert workers_and_threads(Namespace(workers=None, threads=4, launcher="local"), 20, []) == (2, 4)
    assert workers_and_threads(args, todo=20, gpus=["0", "1"]) == (2, 4)  # one worker per GPU
    with pytest.raises(Exception, match="--workers 0"):
        workers_and_threads(Namespace(workers=0, threads=None, launcher="local"), 5, [])


def test_a_cell_whose_checkpoint_is_gone_is_named_with_what_to_do(tmp_path, capsys):
    # as after cloning a study's committed records: a record of an unfinished run, its checkpoint not committed
    args = [*TINY, "--searchers", "random", "--seeds", "0", "--epochs", "2", "--out", str(tmp_path)]
    assert main(args) == 0
    (path,) = tmp_path.rglob("record.json")
    raw = json.loads(path.read_text())
    raw["status"], raw["epochs"] = "interrupted", raw["epochs"][:1]
    path.write_text(json.dumps(raw))
    (path.parent / "checkpoint.pt").unlink(missing_ok=True)
    assert main(args) == 1  # the cell could not run: the sweep's exit status says so
    out = capsys.readouterr().out
    assert "1 could not run" in out
    assert "holds a search with 1 epoch(s) and no checkpoint" in out and "move the folder away" in out
    assert "use --resume" not in out  # a flag of `run`, which would not help here
