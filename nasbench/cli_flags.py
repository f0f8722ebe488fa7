"""The flags that ``run`` and ``eval`` share: budget, data, device, output, overrides, resume."""

from __future__ import annotations

import argparse


def add_training_flags(p: argparse.ArgumentParser, what: str) -> None:
    """Add the shared flags; ``what`` names the job in the help texts ("search", "evaluation")."""
    p.add_argument("--preset", help="paper | small | tiny (default: paper on a GPU, small on a CPU)")
    p.add_argument("--epochs", type=int, help=f"number of {what} epochs (overrides the preset)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", help="data folder (default: the built-in slice shipped with nasbench)")
    p.add_argument("--download", action="store_true", help="download the full data set into --data first")
    p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (default)")
    p.add_argument("--out", default="runs", help=f"folder for {what} records and checkpoints (default: runs)")
    p.add_argument(
        "--set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="override any config value, e.g. --set batch_size=32 (an unknown key lists the allowed ones)",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const="",
        metavar="RUN_DIR",
        help=f"continue an interrupted {what}: the newest unfinished one matching the flags, or RUN_DIR",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
