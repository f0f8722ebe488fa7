"""The Ray and SLURM launchers end to end on tiny cells: a real local Ray cluster, and submitit's local
executor standing in for SLURM (with a preemption: the cell ends interrupted, is requeued and resumes)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nasbench.cli import main
from nasbench.results import RunRecord
from nasbench.sweep.grid import Cell

CELLS = ["sweep", "--spaces", "nb201", "--preset", "tiny", "--seeds", "0", "--device", "cpu", "--threads", "1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_cluster():
    pytest.importorskip("ray")
    ray_cli = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = [ray_cli, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2"]
    subprocess.run(
        [*start, "--include-dashboard=false", "--disable-usage-stats"],
        check=True,
        env=env,
        capture_output=True,
        timeout=120,
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_ray_launcher_runs_the_cells_on_a_running_cluster(ray_cluster, tmp_path, capsys):
    args = [
        *CELLS,
        "--searchers",
        "darts1,random",
        "--out",
        str(tmp_path),
        "--launcher",
        "ray",
        "--address",
        ray_cluster,
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    found = [RunRecord.load(p) for p in tmp_path.rglob("record.json")]
    assert sorted(r.searcher for r in found) == ["darts1", "random"] and all(r.status == "completed" for r in found)
    assert "cells: 2 completed" in out and "launcher ray" in out
    assert all(r.provenance["threads"] == 1 for r in found)  # the task's threads, as asked for


def test_ray_launcher_says_when_the_cluster_is_unreachable(tmp_path, capsys):
    pytest.importorskip("ray")
    port = free_port()  # nothing listens there
    args = [
        *CELLS,
        "--searchers",
        "random",
        "--out",
        str(tmp_path),
        "--launcher",
        "ray",
        "--address",
        f"127.0.0.1:{port}",
    ]
    assert main(args) == 2
    assert "cannot reach the Ray cluster" in capsys.readouterr().err


def test_slurm_launcher_through_submitit_runs_an_array_job(tmp_path, capsys):
    pytest.importorskip("submitit")
    args = [*CELLS, "--searchers", "darts1,random", "--out", str(tmp_path), "--launcher", "slurm", "--cluster", "local"]
    assert main(args) == 0
    out = capsys.readouterr().out
    found = [RunRecord.load(p) for p in tmp_path.rglob("record.json")]
    assert len(found) == 2 and all(r.status == "completed" for r in found)
    assert "submitted array job" in out and (tmp_path / ".submitit").is_dir()


def test_a_preempted_slurm_cell_ends_interrupted_is_requeued_and_resumes(tmp_path):
    pytest.importorskip("submitit")
    from nasbench.sweep.slurm import SlurmLauncher

    cell = Cell("darts1", "nb201", "tiny", 0, 5, (("steps_per_epoch", "6"),))
    launcher = SlurmLauncher(tmp_path, 1, 1, "cpu", False, None, 60, 0, None, {}, cluster="local")
    (job,) = launcher.executor.map_array(launcher.task, [cell.to_dict()])
    record = tmp_path / cell.folder / "record.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (record.exists() and RunRecord.load(record).epochs):
        time.sleep(0.05)
    tasks = subprocess.run(["pgrep", "-f", f"submitit.core._submit {tmp_path}"], capture_output=True, text=True)
    for pid in tasks.stdout.split():
        os.kill(int(pid), signal.SIGUSR2)  # what SLURM sends before a preemption or the time limit
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "interrupted" not in RunRecord.load(record).status:
        if RunRecord.load(record).status == "completed":
            pytest.skip("the cell finished before the signal reached it")
        time.sleep(0.05)
    interrupted = RunRecord.load(record)
    assert interrupted.status == "interrupted" and "SIGTERM" in (interrupted.error or "")
    outcome = job.result()  # the requeued task
    final = RunRecord.load(record)
    assert outcome["state"] == "completed" and final.status == "completed" and len(final.epochs) == 5
    log = (tmp_path / cell.folder / "log.txt").read_text()
    assert f"resuming after epoch {len(interrupted.epochs)}" in log
    assert final.epochs[0] == interrupted.epochs[0]  # the epochs before the preemption were kept
