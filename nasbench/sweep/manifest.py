"""The manifest of a sweep folder, ``sweep.json``: the grids run into it and every cell's state.

The run records are the source of truth; the manifest is a summary written from them, so that a person
(or a script) sees what a folder holds and what is missing without reading every record. Several sweeps
into one folder merge: cells are keyed by their folder, and each invocation is listed.
"""

from __future__ import annotations

import fcntl
import json
from collections import Counter
from pathlib import Path
from typing import Any

from nasbench.rundir import atomic_write_text, now_iso, writing
from nasbench.sweep.grid import Cell

MANIFEST = "sweep.json"
SCHEMA = 1


def read_manifest(root: Path) -> dict[str, Any]:
    path = Path(root) / MANIFEST
    if not path.exists():
        return {"schema": SCHEMA, "sweeps": [], "cells": {}}
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {"schema": SCHEMA, "sweeps": [], "cells": {}}  # rebuilt from the records on the next write
    return (
        raw if isinstance(raw, dict) and raw.get("schema") == SCHEMA else {"schema": SCHEMA, "sweeps": [], "cells": {}}
    )


def update_manifest(root: Path, states: dict[Cell, str], invocation: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge ``states`` (cell -> state) and the ``invocation`` into the folder's manifest, under a lock so
    that two sweeps writing at once lose neither's cells."""
    root = Path(root)
    with writing(root):
        root.mkdir(parents=True, exist_ok=True)
        lock = open(root / ".sweep.lock", "a")  # noqa: SIM115 (closed below, after the write)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = read_manifest(root)
        if invocation is not None and invocation not in manifest["sweeps"]:
            manifest["sweeps"].append(invocation)
        for cell, state in states.items():
            manifest["cells"][cell.folder] = {**cell.to_dict(), "state": state}
        manifest["counts"] = dict(Counter(entry["state"] for entry in manifest["cells"].values()))
        manifest["updated_at"] = now_iso()
        atomic_write_text(root / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        return manifest
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
