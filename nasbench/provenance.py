"""Where a result came from: code version, library versions, machine."""

from __future__ import annotations

import platform
import random
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

import nasbench


def seed_all(seed: int) -> None:
    """The one place a run seeds Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every random state a run uses, as tensors and plain data (checkpoints load with ``weights_only``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    keys_int64 = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    numpy = {"kind": kind, "keys": keys_int64, "pos": pos, "gauss": (has_gauss, cached)}
    state = {"python": random.getstate(), "numpy": numpy, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], *n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def git_commit() -> str:
    """The commit of the nasbench checkout, with ``+dirty`` for uncommitted changes; ``unknown`` if none."""
    root = Path(nasbench.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"CPU {line.split(':', 1)[1].strip()} ({_threads()})"
    except OSError:
        pass
    return f"CPU {platform.processor() or platform.machine()} ({_threads()})"


def _threads() -> str:
    return f"{torch.get_num_threads()} threads"  # one wording for every count, so that records group alike


def provenance(device: torch.device) -> dict[str, Any]:
    return {
        "git_commit": git_commit(),
        "nasbench_version": nasbench.__version__,
        "torch_version": str(torch.__version__),
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": device_name(device),
        "device_count": 1,
        "threads": torch.get_num_threads(),
    }
