"""The Ray launcher: each cell a Ray task that asks for its threads as CPUs (and one GPU where the cluster
has GPUs); the records land in the sweep folder, which every node must see (a shared file system).

``pip install -e ".[ray]"``. Without ``--address`` a local Ray instance is started for the sweep; with
``--address auto`` or ``HOST:PORT`` the cells go to a running cluster. Ctrl-C (or SIGTERM) cancels the
tasks; Ray delivers that to a running cell as KeyboardInterrupt, so its record ends ``interrupted``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nasbench.errors import UserError
from nasbench.signals import interrupt_on_signals
from nasbench.sweep.cell import Outcome
from nasbench.sweep.grid import Cell

REACH_TIMEOUT_S = 5


def _run_remote(cell: dict[str, Any], root: str, threads: int, device: str, retry_failed: bool) -> dict[str, Any]:
    from nasbench.cli_flags import apply_threads
    from nasbench.sweep.cell import run_cell

    apply_threads(threads)
    with interrupt_on_signals():
        return run_cell(Cell.from_dict(cell), Path(root), device, retry_failed).to_dict()


class RayLauncher:
    def __init__(self, root: Path, address: str | None, threads: int, device: str, retry_failed: bool) -> None:
        try:
            import ray
        except ImportError:
            raise UserError('--launcher ray needs Ray: pip install -e ".[ray]"') from None
        self.ray = ray
        self.root, self.address, self.threads = Path(root).resolve(), address, threads
        self.device, self.retry_failed = device, retry_failed

    def check_reachable(self) -> None:
        """Fail at once, with a clear message, where HOST:PORT does not answer (Ray itself retries for minutes)."""
        host, _, port = (self.address or "").rpartition(":")
        if not host or not port.isdigit():
            return  # no address (a local instance) or "auto": Ray finds the cluster itself
        try:
            socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT_S).close()
        except OSError as exc:
            raise UserError(
                f"cannot reach the Ray cluster at {self.address}: {exc}; is `ray start --head` running there?"
            ) from None

    def run(self, cells: list[Cell], on_done: Callable[[Outcome], None]) -> None:
        ray = self.ray
        self.check_reachable()
        try:
            ray.init(address=self.address, ignore_reinit_error=True, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(
                f"cannot reach the Ray cluster at {self.address or 'a new local instance'}: {exc}"
            ) from None
        try:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 and self.device != "cpu" else 0
            task = ray.remote(num_cpus=self.threads, num_gpus=gpus, max_retries=0)(_run_remote)
            refs = {
                task.remote(c.to_dict(), str(self.root), self.threads, self.device, self.retry_failed): c for c in cells
            }
            with interrupt_on_signals():
                try:
                    while refs:
                        done, _ = ray.wait(list(refs), num_returns=1, timeout=1.0)
                        for ref in done:
                            cell = refs.pop(ref)
                            try:
                                on_done(Outcome.from_dict(ray.get(ref)))
                            except ray.exceptions.RayError as exc:
                                on_done(Outcome(cell, "failed", f"the Ray task failed: {str(exc).splitlines()[0]}"))
                except KeyboardInterrupt:
                    for ref in refs:
                        ray.cancel(ref)
                    for ref, cell in refs.items():  # wait for the cancelled cells to save their records
                        try:
                            on_done(Outcome.from_dict(ray.get(ref, timeout=120)))
                        except Exception:
                            on_done(Outcome(cell, "interrupted", "cancelled"))
                    raise
        finally:
            ray.shutdown()
