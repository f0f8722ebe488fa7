"""The SLURM launcher, through submitit: the cells of a sweep as one array job, one task per cell.

``pip install -e ".[slurm]"``. Each task runs its cell in a child process (``python -m
nasbench.sweep.cell``). When SLURM preempts a task or its time runs out, submitit signals the task,
which passes SIGTERM on to the cell: its record ends ``interrupted`` with the last epoch's checkpoint, and
submitit requeues the task, which resumes the cell from there. The sweep folder must be on a file system
every node sees; submitit's own files go to ``OUT/.submitit``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nasbench.errors import UserError
from nasbench.signals import interrupt_on_signals
from nasbench.sweep.cell import Outcome
from nasbench.sweep.grid import Cell

try:
    from submitit.helpers import Checkpointable, DelayedSubmission
except ImportError:  # the launcher says what to install when it is used
    Checkpointable = object  # type: ignore[misc,assignment]
    DelayedSubmission = None  # type: ignore[misc,assignment]

SAVE_WAIT_S = 300  # how long a signalled cell gets to save its record before its task is requeued


class CellTask(Checkpointable):  # type: ignore[misc,valid-type]
    """One array task: run a cell in a child process; on preemption or timeout, stop it cleanly and requeue."""

    def __init__(self, root: str, threads: int, device: str, retry_failed: bool) -> None:
        self.root, self.threads, self.device, self.retry_failed = root, threads, device, retry_failed
        self.child: subprocess.Popen[str] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "child"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, child=None)

    def __call__(self, cell: dict[str, Any]) -> dict[str, Any]:
        command = [sys.executable, "-m", "nasbench.sweep.cell", json.dumps(cell), self.root, self.device]
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        self.child = subprocess.Popen(
            command + (["--retry-failed"] if self.retry_failed else []), env=env, stdout=subprocess.PIPE, text=True
        )
        out, _ = self.child.communicate()
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if not lines:
            return Outcome(
                Cell.from_dict(cell), "failed", f"the cell process exited with {self.child.returncode}"
            ).to_dict()
        return json.loads(lines[-1])

    def checkpoint(self, cell: dict[str, Any]) -> Any:
        """Called by submitit on preemption or timeout: the cell saves itself as interrupted, then requeue."""
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)
            try:
                self.child.wait(timeout=SAVE_WAIT_S)
            except subprocess.TimeoutExpired:
                self.child.kill()
        return DelayedSubmission(CellTask(self.root, self.threads, self.device, self.retry_failed), cell)


class SlurmLauncher:
    def __init__(
        self,
        root: Path,
        workers: int,
        threads: int,
        device: str,
        retry_failed: bool,
        partition: str | None,
        minutes: int,
        gpus: int,
        mem_gb: int | None,
        extra: dict[str, str],
        cluster: str | None = None,
    ) -> None:
        try:
            import submitit
        except ImportError:
            raise UserError('--launcher slurm needs submitit: pip install -e ".[slurm]"') from None
        self.root = Path(root).resolve()
        self.task = CellTask(str(self.root), threads, device, retry_failed)
        self.executor = submitit.AutoExecutor(folder=self.root / ".submitit", cluster=cluster)
        params: dict[str, Any] = {
            "name": "nasbench-sweep",
            "timeout_min": minutes,
            "cpus_per_task": threads,
            "gpus_per_node": gpus,
            "tasks_per_node": 1,
            "slurm_array_parallelism": workers,
        }
        if partition:
            params["slurm_partition"] = partition
        if mem_gb:
            params["mem_gb"] = mem_gb
        params.update({k if k.startswith("slurm_") else f"slurm_{k}": v for k, v in extra.items()})
        try:
            self.executor.update_parameters(**params)
        except (ValueError, TypeError) as exc:
            raise UserError(f"submitit refuses a setting: {exc}") from None

    def run(self, cells: list[Cell], on_done: Callable[[Outcome], None]) -> None:
        jobs = self.executor.map_array(self.task, [c.to_dict() for c in cells])
        print(
            f"submitted array job {jobs[0].job_id.split('_')[0]} ({len(jobs)} tasks); submitit files in "
            f"{self.root / '.submitit'}"
        )
        waiting = dict(zip(jobs, cells))
        with interrupt_on_signals():
            try:
                while waiting:
                    for job in [j for j in waiting if j.done()]:
                        cell = waiting.pop(job)
                        try:
                            on_done(Outcome.from_dict(job.result()))
                        except Exception as exc:
                            on_done(Outcome(cell, "failed", f"the job failed: {str(exc).strip().splitlines()[-1]}"))
                    time.sleep(1.0)
            except KeyboardInterrupt:
                print(
                    "the sweep stops watching; its jobs keep running on the cluster (scancel to stop them)",
                    file=sys.stderr,
                )
                raise
