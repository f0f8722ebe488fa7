"""Processes side by side share the cores: the rule by hand, the registry with real processes, the flags."""

import os
import subprocess
import sys

import pytest
import torch

from nasbench import threads
from nasbench.cli_flags import apply_threads
from nasbench.threads import SHARE, ThreadRegistry, fair_share


@pytest.fixture
def restored(monkeypatch, tmp_path):
    """The registry in a temporary folder; torch's threads and this process's entry put back afterwards."""
    monkeypatch.setenv(threads.REGISTRY_ENV, str(tmp_path))
    before, registered = torch.get_num_threads(), threads._registered
    yield tmp_path
    if threads._registered is not None and threads._registered is not registered:
        threads._registered.close()
    threads._registered = registered
    torch.set_num_threads(before)


def test_fair_share_by_hand():
    assert fair_share(2, [], 1) == 2
    assert fair_share(2, [], 2) == 1
    assert fair_share(8, [], 3) == 2  # 8 // 3
    assert fair_share(16, [4, 4], 2) == 4  # what the two fixed processes leave, halved
    assert fair_share(2, [1, 1], 1) == 1  # nothing left: still one thread


def test_a_process_that_ends_gives_its_cores_back(restored):
    own = ThreadRegistry(restored, cores=4, threads=None)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ThreadRegistry(restored, cores=4, threads=None, pid=sleeper.pid)
        ThreadRegistry(restored, cores=4, threads=1, pid=os.getppid())  # a live process with one fixed thread
        assert own.share() == 1  # (4 - 1) // 2
        own.rebalance()
        assert torch.get_num_threads() == 1
    finally:
        sleeper.kill()
        sleeper.wait()
    assert own.share() == 3  # the sleeper is gone: its file too
    assert not (restored / str(sleeper.pid)).exists()
    own.rebalance()
    assert torch.get_num_threads() == 3
    own.close()
    assert not (restored / str(os.getpid())).exists()


def test_the_flags_decide_whether_a_process_shares(restored, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    entry = restored / str(os.getpid())
    apply_threads(None)
    assert entry.read_text() == SHARE
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user chose: kept as it is
    apply_threads(None)
    assert entry.read_text() == str(torch.get_num_threads())
    apply_threads(1)
    assert entry.read_text() == "1" and torch.get_num_threads() == 1
