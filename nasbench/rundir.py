"""Run folders, shared by ``run``, ``eval`` and ``sweep``: creation, atomic writes, a lock, the status protocol.

A run folder holds ``record.json`` (the source of truth), ``checkpoint.pt`` (the state after the last
complete epoch, with its own copy of the record), ``log.txt`` and ``.lock``.

- Creation is atomic (``os.mkdir`` fails on an existing folder), so two runs never share a folder.
- Every write goes to a temporary file whose name is unique to the writer, is flushed to disk, then
  replaces the target (``os.replace``); a failed write removes its temporary file. A reader sees the old
  file or the new one, never half of one.
- ``RunFolder.lock()`` holds an exclusive ``flock`` on ``.lock`` for as long as the run is alive; the OS
  drops it when the process dies, however it dies. A second process gets a clear error naming the holder.
- The status protocol (``track_status``): ``running`` while epochs run; ``completed``; ``failed`` with the
  reason; ``interrupted`` (Ctrl-C, SIGTERM) with the number of epochs the checkpoint holds. A record that
  says ``running`` while nobody holds its lock belongs to a process that was killed (``is_stale``).
"""

from __future__ import annotations

import contextlib
import copy
import errno
import fcntl
import io
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from nasbench.errors import UserError
from nasbench.results import RunRecord
from nasbench.signals import deferred_signals

RECORD = "record.json"
CHECKPOINT = "checkpoint.pt"
LOG = "log.txt"
LOCK = ".lock"


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite: the run fails with a message, not a traceback."""


class OutputError(UserError):
    """The suite cannot write its output (a full disk, a read-only folder, a path of the wrong kind)."""


def _describe_os_error(exc: OSError, path: Path) -> str:
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EISDIR: "the path is a folder, not a file",
    }
    return f"cannot write {path}: {reasons.get(exc.errno or 0, exc.strerror or str(exc))}"


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn an ``OSError`` raised while writing ``path`` into an ``OutputError`` that says what went wrong."""
    try:
        yield
    except OSError as exc:
        raise OutputError(_describe_os_error(exc, path)) from None


def _write_atomically(path: Path, write: Callable[[io.BufferedWriter], object]) -> None:
    """``write`` into a temporary file unique to this writer, flush it to disk, then replace ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    with writing(path):
        try:
            with open(tmp, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def atomic_write_text(path: Path, text: str) -> None:
    _write_atomically(path, lambda f: f.write(text.encode()))


def atomic_torch_save(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` atomically; ``state`` must hold only tensors and plain data (see ``load_checkpoint``).
    Serialised in memory first: torch's zip writer turns a full disk into an unrelated RuntimeError."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    _write_atomically(path, lambda f: f.write(buffer.getbuffer()))


def save_record(record: RunRecord, path: Path) -> None:
    atomic_write_text(path, record.to_json())


def create_unique_dir(parent: Path, stem: str) -> Path:
    """A new folder ``parent/stem`` (or ``stem-1``, ``stem-2``, ... if taken), created atomically."""
    with writing(Path(parent)):
        Path(parent).mkdir(parents=True, exist_ok=True)
        for n in range(10_000):
            path = Path(parent) / (stem if n == 0 else f"{stem}-{n}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    raise OutputError(f"no free folder name for {parent / stem}")


def timestamped_name(*parts: str) -> str:
    return "-".join([*parts, datetime.now().strftime("%Y%m%d-%H%M%S")])


def find_resumable(parent: Path, stem: str, what: str) -> Path:
    """The newest folder ``parent/stem-<timestamp>`` with a checkpoint whose run did not complete and that no
    live process holds; ``what`` names the run in the error when there is none."""
    for checkpoint in sorted(Path(parent).glob(f"{stem}-*/{CHECKPOINT}"), reverse=True):
        folder = RunFolder(checkpoint.parent)
        try:
            record = folder.read_record()
        except UserError:
            continue
        if (record is None or record.status != "completed") and folder.holder() is None:
            return checkpoint.parent
    raise UserError(
        f"nothing to resume: no unfinished {what} with a checkpoint under {parent}; pass --resume RUN_DIR to name one"
    )


@dataclass
class Holder:
    pid: int
    host: str
    since: str
    command: str

    def __str__(self) -> str:
        return f"process {self.pid} on {self.host} since {self.since} ({self.command})"


def _read_holder(lock_file: io.TextIOWrapper, patience_s: float = 2.0) -> Holder | None:
    """The identity a lock's holder writes into the lock file just after taking the lock; a reader that comes
    in between sees an empty file, so it reads again for up to ``patience_s`` before giving up."""
    deadline = time.monotonic() + patience_s
    while True:
        lock_file.seek(0)
        try:
            return Holder(**json.loads(lock_file.read()))
        except (TypeError, ValueError):
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)


class RunFolder:
    """One run's folder: its files, its lock, and its saves."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_file: io.TextIOWrapper | None = None
        self.checkpoint_epochs = 0  # complete epochs the checkpoint on disk holds, as written by this process
        self.checkpoint_metrics: dict[str, Any] = {}  # the record's metrics as that checkpoint holds them

    @property
    def record_path(self) -> Path:
        return self.path / RECORD

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT

    def read_record(self) -> RunRecord | None:
        return RunRecord.load(self.record_path) if self.record_path.exists() else None

    def holder(self) -> Holder | None:
        """Who holds this folder's lock, or None when nobody does (including this process's own lock)."""
        lock = self.path / LOCK
        if not lock.exists() or self._lock_file is not None:
            return None
        with open(lock) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_holder(f) or Holder(-1, "?", "?", "unknown")
            fcntl.flock(f, fcntl.LOCK_UN)
        return None

    def is_stale(self, record: RunRecord) -> bool:
        """A record that says ``running`` although no process holds the folder: its process was killed."""
        return record.status == "running" and self.holder() is None

    @contextlib.contextmanager
    def lock(self, command: str, wait_s: float = 0.0) -> Iterator[RunFolder]:
        """Hold the folder's lock for the context, waiting up to ``wait_s`` for another holder to let go; then a
        second holder gets a ``FolderBusy`` naming the first."""
        created = not self.path.exists()
        with writing(self.path):
            self.path.mkdir(parents=True, exist_ok=True)
            try:
                f = open(self.path / LOCK, "a+")  # noqa: SIM115 (held open for as long as the lock)
            except OSError:
                if created:  # a full disk: leave no empty folder behind
                    with contextlib.suppress(OSError):
                        self.path.rmdir()
                raise
        deadline = time.monotonic() + wait_s
        try:
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.1)
        except BlockingIOError:
            holder = _read_holder(f)
            f.close()
            raise FolderBusy(
                f"{self.path} is in use by {holder or 'another process'}; wait for it to finish or stop it"
            ) from None
        try:
            with writing(self.path / LOCK):
                f.seek(0)
                f.truncate()
                holder_now = Holder(os.getpid(), socket.gethostname(), time.strftime("%Y-%m-%d %H:%M:%S"), command)
                f.write(json.dumps(holder_now.__dict__))
                f.flush()
            self._lock_file = f
            self.remove_leftover_temporaries()
            yield self
        finally:
            self._lock_file = None
            fcntl.flock(f, fcntl.LOCK_UN)
            f.close()

    def remove_leftover_temporaries(self) -> None:
        """Temporary files of writers killed mid-write (kill -9, power loss); called with the lock held, when
        no other writer can be at work in the folder."""
        for tmp in self.path.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()

    def save(self, record: RunRecord, state: dict[str, Any], epochs_done: int) -> None:
        """The checkpoint (which carries its own copy of the record), then the record; a signal that arrives
        meanwhile takes effect after both, so the two always describe the same epoch."""
        with deferred_signals():
            atomic_torch_save({**state, "record": record.to_dict()}, self.checkpoint_path)
            self.checkpoint_epochs, self.checkpoint_metrics = epochs_done, copy.deepcopy(record.metrics)
            save_record(record, self.record_path)

    def log_to(self, progress: bool, echo: Callable[[str], None]) -> Callable[[str], None]:
        """A log function: one timestamped line per call in ``log.txt``, and the line on the console."""
        from tqdm import tqdm

        def log(line: str) -> None:
            with writing(self.path / LOG), (self.path / LOG).open("a") as f:
                f.write(f"{time.strftime('%H:%M:%S')} {line}\n")
            (tqdm.write if progress else echo)(line)

        return log


class FolderBusy(UserError):
    """Another process holds the run folder."""


def load_checkpoint(folder: RunFolder) -> dict[str, Any]:
    """The checkpoint of ``folder``, on the CPU, read with ``weights_only=True``: tensors and plain data only,
    so a checkpoint from someone else cannot run code. Clear errors for a missing or damaged file."""
    path = folder.checkpoint_path
    if not path.exists():
        record = folder.read_record()
        held = f" although its record lists {len(record.epochs)} epoch(s)" if record and record.epochs else ""
        raise UserError(f"cannot resume {folder.path}: it has no {CHECKPOINT}{held}; start a new run")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError... for damaged files
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
        reason = next((line for line in lines if "Unsupported global" in line), lines[0])
        raise UserError(
            f"cannot resume {folder.path}: {CHECKPOINT} cannot be read safely ({reason[:300]}); it is damaged, "
            "truncated, or holds objects other than tensors and plain data. Start a new run"
        ) from None


def load_state(load: Callable[[dict[str, Any]], None], state: dict[str, Any], folder: RunFolder) -> None:
    """``load(state)``, with a clear error where the checkpoint was written by code whose modules differ
    (torch reports missing or unexpected keys and shape mismatches as RuntimeError)."""
    try:
        load(state)
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0]
        raise UserError(
            f"cannot resume {folder.path}: its checkpoint does not fit this version of the code ({reason}); "
            "start a new run without --resume"
        ) from None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


EVAL_KIND = "eval"  # the ``searcher`` of an evaluation record; any other name is a search


def record_kind(record: RunRecord) -> str:
    return "evaluation" if record.searcher == EVAL_KIND else "search"


@dataclass
class Opened:
    """A locked run folder, what it held, and whether this job continues it (``resume``)."""

    folder: RunFolder
    existing: RunRecord | None
    resume: bool

    @property
    def finished(self) -> bool:
        """The folder holds a completed run: the job must change nothing and return it."""
        return self.existing is not None and self.existing.status == "completed"


@contextlib.contextmanager
def open_folder(path: Path, command: str, kind: str, resume: bool | str) -> Iterator[Opened]:
    """Lock ``path`` for a job of ``kind`` ("search" or "evaluation") and decide how it goes on.

    ``resume``: True continues the folder's run from its checkpoint; False starts a new run in a new or
    empty folder; "auto" continues where there is a checkpoint and starts otherwise (the sweep). A
    completed run is never touched (``Opened.finished``). When the body fails before it saved a record, a
    folder that holds nothing but the job's own lock and log is removed: set-up errors leave nothing behind.
    """
    path = Path(path)
    folder = RunFolder(path)
    with folder.lock(command):  # a second process stops here (FolderBusy) and never touches the folder
        try:
            existing = folder.read_record()
            if existing is not None and record_kind(existing) != kind:
                raise UserError(f"{path} holds an {record_kind(existing)} run, not a {kind}; name a {kind} folder")
            has_checkpoint = folder.checkpoint_path.exists()
            if resume == "auto":
                resume = has_checkpoint
            if not resume and existing is not None and existing.epochs and existing.status != "completed":
                held = f"{path} already holds a {kind} with {len(existing.epochs)} epoch(s)"
                if has_checkpoint:
                    raise UserError(f"{held}; use --resume")
                raise UserError(
                    f"{held} and no checkpoint to continue it from (checkpoints stay out of version control); "
                    "move the folder away to start it over"
                )
            yield Opened(folder, existing, bool(resume))
        except BaseException:
            # only the holder cleans up, and while it holds the lock: another process's new folder is never removed
            if path.is_dir() and {p.name for p in path.iterdir()} <= {LOCK, LOG}:
                shutil.rmtree(path, ignore_errors=True)
            raise


def reopen(folder: RunFolder, log: Callable[[str], None], epochs: int) -> tuple[dict[str, Any], RunRecord, int]:
    """For a resumed job: the checkpoint's state (random states restored), its copy of the record reopened,
    and the first epoch still to run."""
    from nasbench.provenance import set_rng_state

    state = load_checkpoint(folder)
    try:
        set_rng_state(state["rng"])
        record = RunRecord(**state["record"])
        start = int(state["epoch"]) + 1
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"cannot resume {folder.path}: its checkpoint lacks what a resume needs ({exc})") from None
    record.status, record.error, record.finished_at = "running", None, None
    folder.checkpoint_epochs, folder.checkpoint_metrics = len(record.epochs), copy.deepcopy(record.metrics)
    log(f"resuming after epoch {start} of {epochs}")
    return state, record, start


@contextlib.contextmanager
def track_status(record: RunRecord, folder: RunFolder, running_epoch: Callable[[], int], fix: str) -> Iterator[None]:
    """The status protocol around a run's epochs. ``running_epoch()`` gives the 1-based epoch in progress;
    ``fix`` says what to change when a loss becomes non-finite. The record is saved whatever happens."""
    try:
        yield
        record.status, record.error = "completed", None
    except KeyboardInterrupt as exc:
        cause = f" by {exc.args[0]}" if exc.args else ""
        record.status = "interrupted"
        record.error = (
            f"interrupted{cause} during epoch {running_epoch()}; the checkpoint holds "
            f"{folder.checkpoint_epochs} complete epoch(s)"
        )
        raise
    except NonFiniteLoss as exc:
        record.status, record.error = "failed", f"{exc}. {fix}"
    except OutputError as exc:
        record.status, record.error = "failed", str(exc)
        raise
    except Exception as exc:
        record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if record.status != "completed" and len(record.epochs) > folder.checkpoint_epochs:
            # an epoch that ended but was not saved yet (the stop came between the two): the record keeps what
            # the checkpoint holds, so that a resume finds the two in step and runs that epoch again
            del record.epochs[folder.checkpoint_epochs :]
            record.metrics = folder.checkpoint_metrics
        record.finished_at = now_iso()
        with deferred_signals(), contextlib.suppress(OutputError):  # a full disk must not hide the first error
            save_record(record, folder.record_path)
