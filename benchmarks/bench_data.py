"""The data pipeline: augmented CIFAR-10 batches per second on the run's device."""

from __future__ import annotations

from itertools import islice

import torch

from nasbench.data import builtin_path
from nasbench.data.cifar10 import ImageStream, load_cifar10

from .conftest import SUMMARY, sync


def test_cifar10_batches_per_second(benchmark, device):
    images, labels = load_cifar10(builtin_path("cifar10-mini"))
    stream = ImageStream(images.to(device), labels.to(device), 64, seed=0, stream=0, train=True)
    n_batches = 20

    def epoch() -> None:
        for x, _ in islice(stream.epoch(0), n_batches):
            x.sum()
        sync(device)

    benchmark.pedantic(epoch, rounds=5, iterations=1, warmup_rounds=1)
    samples_per_s = n_batches * 64 / benchmark.stats.stats.median
    benchmark.extra_info["samples_per_s"] = samples_per_s
    SUMMARY["data/cifar10"] = {"samples_per_s": samples_per_s, "median_s": benchmark.stats.stats.median}
    assert torch.isfinite(torch.tensor(samples_per_s))
