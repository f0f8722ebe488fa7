"""One cell of a sweep, run in the calling process: its state, its configuration, the run itself.

``python -m nasbench.sweep.cell CELL_JSON OUT`` runs one cell in a process of its own (the SLURM
launcher does; the local and Ray launchers call ``run_cell`` in their long-lived workers) and prints the
outcome as one JSON line.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasbench.config import RunConfig, config_differences, config_from_dict, resolve_config
from nasbench.errors import UserError
from nasbench.registry import SEARCHERS, SPACES
from nasbench.rundir import FolderBusy, RunFolder
from nasbench.signals import interrupt_on_signals
from nasbench.sweep.grid import Cell

# what a cell's folder says: no record yet; the record's status; "running" (alive elsewhere); "stale" (the
# record says running but no process holds the folder: it was killed and can be resumed)
STATES = ("pending", "running", "stale", "completed", "failed", "interrupted")


def cell_state(root: Path, cell: Cell) -> str:
    folder = RunFolder(Path(root) / cell.folder)
    try:
        record = folder.read_record()
    except UserError:
        return "failed"  # an unreadable record: the cell must be looked at (--retry-failed starts it over)
    if record is None:
        return "running" if folder.holder() is not None else "pending"
    if record.status == "running":
        return "stale" if folder.is_stale(record) else "running"
    return record.status


def resolve_cell(cell: Cell, device: str = "auto") -> RunConfig:
    """The cell's configuration, exactly as ``nasbench run`` would resolve its flags."""
    train_flags = {"epochs": cell.epochs} if cell.epochs is not None else {}
    return resolve_config(
        SEARCHERS.get(cell.searcher),
        SPACES.get(cell.space)(),
        searcher=cell.searcher,
        preset=cell.preset,
        seed=cell.seed,
        device=device,
        data=None,
        train_flags=train_flags,
        set_pairs=dict(cell.settings),
    )


def check_resumable(cell: Cell, cfg: RunConfig, folder: RunFolder) -> None:
    """A cell's folder may only be continued with the configuration it was started with."""
    record = folder.read_record()
    if record is None:
        return
    stored = config_from_dict(record.config, SEARCHERS.get(cell.searcher), SPACES.get(cell.space)())
    changed = config_differences(stored, cfg)
    if changed:
        raise UserError(
            f"{folder.path} was started with other settings than this sweep resolves for it ("
            + "; ".join(changed)
            + "); move the folder away, or sweep into another --out"
        )


@dataclass
class Outcome:
    """What running a cell came to; ``state`` is the cell's state afterwards (or "busy" / "error")."""

    cell: Cell
    state: str
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"cell": self.cell.to_dict(), "state": self.state, "message": self.message, "metrics": self.metrics}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Outcome:
        return cls(Cell.from_dict(raw["cell"]), raw["state"], raw.get("message", ""), raw.get("metrics", {}))


def should_run(state: str, retry_failed: bool) -> bool:
    """Pending, interrupted and stale cells run (resuming from their checkpoints); failed ones only with
    ``--retry-failed``; completed and running ones never."""
    return state in ("pending", "interrupted", "stale") or (state == "failed" and retry_failed)


def run_cell(cell: Cell, root: Path, device: str = "auto", retry_failed: bool = False) -> Outcome:
    """Run (or continue) one cell in this process, unless it is done or held by another process."""
    from nasbench.runner import run  # torch and the searchers only where a cell actually runs

    state = cell_state(root, cell)
    if not should_run(state, retry_failed):
        return Outcome(cell, state, "skipped")
    folder = RunFolder(Path(root) / cell.folder)
    try:
        cfg = resolve_cell(cell, device)
        check_resumable(cell, cfg, folder)
        record = run(cfg, folder.path, resume="auto", progress=False, echo=lambda line: None)
    except FolderBusy as exc:
        return Outcome(cell, "running", str(exc))
    except UserError as exc:
        return Outcome(cell, "error", str(exc))
    except KeyboardInterrupt:
        return Outcome(cell, "interrupted", "interrupted; the next sweep resumes it from its checkpoint")
    return Outcome(cell, record.status, record.error or "", dict(record.metrics))


def main(argv: list[str] | None = None) -> int:
    """``python -m nasbench.sweep.cell CELL_JSON OUT [DEVICE] [--retry-failed]``: one cell, outcome on stdout."""
    args = list(sys.argv[1:] if argv is None else argv)
    retry = "--retry-failed" in args
    args = [a for a in args if a != "--retry-failed"]
    cell, root = Cell.from_dict(json.loads(args[0])), Path(args[1])
    device = args[2] if len(args) > 2 else "auto"
    with interrupt_on_signals():
        outcome = run_cell(cell, root, device, retry)
    print(json.dumps(outcome.to_dict(), default=str))
    return {"completed": 0, "interrupted": 130, "error": 2}.get(outcome.state, 1)


if __name__ == "__main__":
    sys.exit(main())
