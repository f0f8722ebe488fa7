"""The run-folder library: atomic writes, the lock, the status protocol, safe checkpoints, clear output errors."""

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from nasbench.errors import UserError
from nasbench.results import RunRecord
from nasbench.rundir import (
    CHECKPOINT,
    LOCK,
    FolderBusy,
    OutputError,
    RunFolder,
    atomic_torch_save,
    atomic_write_text,
    create_unique_dir,
    load_checkpoint,
    open_folder,
    save_record,
    track_status,
)


def a_record(**changes):
    fields = dict(searcher="darts1", space="nb201", seed=0, preset="tiny", config={}, provenance={}, data="slice")
    return RunRecord(**{**fields, **changes})


def test_two_runs_never_share_a_folder(tmp_path):
    made = {create_unique_dir(tmp_path, "darts1-tiny-seed0") for _ in range(5)}
    assert len(made) == 5 and all(p.is_dir() for p in made)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "record.json"
    atomic_write_text(target, '{"old": true}')

    real_open = open

    class FillsUp:  # a file whose disk fills up after the first bytes
        def __init__(self, *args):
            self.f = real_open(*args)

        def write(self, data):
            self.f.write(bytes(data)[:7])
            raise OSError(28, "No space left on device")  # errno.ENOSPC

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("builtins.open", FillsUp)
        with pytest.raises(OutputError, match="cannot write .*checkpoint.pt: the disk is full"):
            atomic_torch_save({"x": torch.ones(1)}, tmp_path / "checkpoint.pt")
    assert json.loads(target.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]


def _write_records(path, n, tag):
    for i in range(n):
        save_record(a_record(error=f"{tag}-{i}" * 50), path)


def test_readers_never_see_half_a_record_while_two_processes_write(tmp_path):
    path = tmp_path / "record.json"
    save_record(a_record(), path)
    writers = [mp.get_context("spawn").Process(target=_write_records, args=(path, 300, t)) for t in "ab"]
    for w in writers:
        w.start()
    reads = bad = 0
    while any(w.is_alive() for w in writers) or reads < 300:
        try:
            json.loads(path.read_text())
        except ValueError:
            bad += 1
        reads += 1
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert bad == 0 and reads >= 300
    assert not list(tmp_path.glob(".*.tmp"))


HOLD = """
import sys, time
from nasbench.rundir import RunFolder
with RunFolder(sys.argv[1]).lock("holder-for-test"):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def held_folder(tmp_path):
    folder = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield folder, proc
    proc.kill()
    proc.wait()


def test_a_second_process_is_refused_with_the_holder_named(held_folder):
    folder, proc = held_folder
    with pytest.raises(FolderBusy, match=rf"in use by process {proc.pid} on .*holder-for-test"):
        RunFolder(folder).lock("second").__enter__()
    assert RunFolder(folder).holder().pid == proc.pid


SLOW_TO_NAME_ITSELF = """
import fcntl, json, sys, time
with open(sys.argv[1], "a+") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(0.5)  # the window between taking the lock and writing who holds it, widened
    f.write(json.dumps({"pid": 4242, "host": "h", "since": "now", "command": "late-writer"}))
    f.flush()
    time.sleep(60)
"""


def test_a_refusal_in_the_moment_before_the_holder_names_itself_still_names_it(tmp_path):
    """Two resumers raced this way in CI: the second read the lock file before the first had written into it."""
    folder = tmp_path / "run"
    folder.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", SLOW_TO_NAME_ITSELF, str(folder / LOCK)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"locked"
        with pytest.raises(FolderBusy, match="in use by process 4242 on h since now"):
            RunFolder(folder).lock("second").__enter__()
    finally:
        proc.kill()
        proc.wait()


def test_a_refused_job_leaves_the_holders_new_folder_alone(held_folder):
    """The holder has only its lock in the folder yet (set-up); a second job refused there must not clean the
    folder up as if its own set-up had failed (two sweeps on one folder lost a cell that way)."""
    folder, proc = held_folder
    with pytest.raises(FolderBusy), open_folder(folder, "second", "search", resume="auto"):
        pass
    assert (folder / LOCK).exists() and RunFolder(folder).holder().pid == proc.pid


def test_a_killed_holder_leaves_a_stale_record_and_a_free_folder(held_folder):
    folder, proc = held_folder
    save_record(a_record(status="running"), folder / "record.json")
    assert not RunFolder(folder).is_stale(RunFolder(folder).read_record())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert RunFolder(folder).is_stale(RunFolder(folder).read_record())
    (folder / ".record.json.999.deadbeef.tmp").write_text("half a rec")  # a writer killed mid-write
    with RunFolder(folder).lock("after the kill"):
        assert not list(folder.glob(".*.tmp"))


def test_set_up_failure_leaves_no_folder_but_a_saved_record_stays(tmp_path):
    with pytest.raises(UserError, match="no data"), open_folder(tmp_path / "a", "test", "search", resume=False):
        raise UserError("no data")
    assert not (tmp_path / "a").exists()
    with pytest.raises(RuntimeError), open_folder(tmp_path / "b", "test", "search", resume=False) as opened:
        save_record(a_record(), opened.folder.record_path)
        raise RuntimeError("later")
    assert (tmp_path / "b" / "record.json").exists()


def test_a_folder_of_the_other_kind_is_refused(tmp_path):
    save_record(a_record(searcher="eval"), tmp_path / "record.json")
    with pytest.raises(UserError, match="holds an evaluation run, not a search"):
        open_folder(tmp_path, "test", "search", resume=True).__enter__()


def test_a_completed_run_is_handed_back_untouched(tmp_path):
    save_record(a_record(status="completed", metrics={"test_ppl": 60.0}), tmp_path / "record.json")
    before = (tmp_path / "record.json").read_bytes()
    with open_folder(tmp_path, "test", "search", resume=True) as opened:
        assert opened.finished and opened.existing.metrics["test_ppl"] == 60.0
    assert (tmp_path / "record.json").read_bytes() == before


@pytest.mark.parametrize(
    ("raised", "status", "error"),
    [
        (KeyboardInterrupt("SIGTERM"), "interrupted", "interrupted by SIGTERM during epoch 3; the checkpoint holds 2"),
        (OutputError("cannot write x: the disk is full"), "failed", "cannot write x: the disk is full"),
        (ValueError("bad"), "failed", "ValueError: bad"),
    ],
)
def test_the_status_protocol_tells_what_the_checkpoint_holds(tmp_path, raised, status, error):
    folder, record = RunFolder(tmp_path), a_record(status="running")
    folder.checkpoint_epochs = 2
    with pytest.raises(type(raised)), track_status(record, folder, running_epoch=lambda: 3, fix=""):
        raise raised
    saved = folder.read_record()
    assert saved.status == status and saved.error.startswith(error) and saved.finished_at


def test_a_stop_between_an_epoch_and_its_save_leaves_the_record_as_the_checkpoint_holds_it(tmp_path):
    folder, record = RunFolder(tmp_path), a_record(status="running")
    record.epochs.append({"epoch": 1})
    record.metrics = {"epochs_done": 1}
    folder.save(record, {"epoch": 0}, epochs_done=1)
    with pytest.raises(KeyboardInterrupt), track_status(record, folder, running_epoch=lambda: 2, fix=""):
        record.epochs.append({"epoch": 2})  # the epoch ended; the signal comes before it is saved
        record.metrics = {"epochs_done": 2}
        raise KeyboardInterrupt("SIGTERM")
    saved = folder.read_record()
    assert saved.status == "interrupted" and saved.epochs == [{"epoch": 1}] and saved.metrics == {"epochs_done": 1}
    assert len(load_checkpoint(folder)["record"]["epochs"]) == 1


class Foreign:  # an object a checkpoint must not carry: unpickling it could run code
    pass


def test_a_checkpoint_with_a_foreign_object_is_refused(tmp_path):
    torch.save({"epoch": 0, "payload": Foreign()}, tmp_path / CHECKPOINT)
    with pytest.raises(UserError, match="cannot be read safely .*Unsupported global"):
        load_checkpoint(RunFolder(tmp_path))


def test_a_truncated_or_missing_checkpoint_is_a_clear_error(tmp_path):
    atomic_torch_save({"epoch": 0, "w": torch.randn(1000)}, tmp_path / CHECKPOINT)
    data = (tmp_path / CHECKPOINT).read_bytes()
    (tmp_path / CHECKPOINT).write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="damaged, truncated"):
        load_checkpoint(RunFolder(tmp_path))
    (tmp_path / CHECKPOINT).unlink()
    save_record(a_record(epochs=[{"epoch": 1}]), tmp_path / "record.json")
    with pytest.raises(UserError, match="no checkpoint.pt although its record lists 1 epoch"):
        load_checkpoint(RunFolder(tmp_path))


@pytest.fixture
def small_mount(tmp_path):
    """A 200 KiB tmpfs (needs root and a kernel that lets this process mount); removed afterwards."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)]).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_an_output_error_and_leaves_nothing_partial(small_mount):
    save_record(a_record(), small_mount / "record.json")
    with pytest.raises(OutputError, match="checkpoint.pt: the disk is full"):
        atomic_torch_save({"w": torch.randn(200_000)}, small_mount / CHECKPOINT)  # 800 kB
    assert sorted(p.name for p in small_mount.iterdir()) == ["record.json"]


def test_a_read_only_folder_is_an_output_error(small_mount):
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    with pytest.raises(OutputError, match="the file system is read-only"):
        save_record(a_record(), small_mount / "record.json")
    with pytest.raises(OutputError, match="read-only"):
        create_unique_dir(small_mount, "run")


def test_lock_waits_for_a_holder_that_lets_go(tmp_path):
    folder = RunFolder(tmp_path)
    release = """
import sys, time
from nasbench.rundir import RunFolder
with RunFolder(sys.argv[1]).lock("brief"):
    print("held", flush=True)
    time.sleep(1.0)
"""
    proc = subprocess.Popen([sys.executable, "-c", release, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    started = time.monotonic()
    with folder.lock("waiter", wait_s=30):
        waited = time.monotonic() - started
    proc.wait()
    assert 0.3 < waited < 30
