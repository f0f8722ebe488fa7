"""The data pipeline: augmented CIFAR-10 batches per second on the run's device, and ImageNet JPEGs decoded per
second by one CPU worker."""

from __future__ import annotations

from itertools import islice

import torch
from PIL import Image

from nasbench.data import builtin_path
from nasbench.data.cifar10 import ImageStream, load_cifar10
from nasbench.data.imagenet import image_folders, loader

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


def test_imagenet_decode_images_per_second(benchmark, tmp_path):
    """One process (workers=0, one thread) decoding and augmenting JPEGs of ImageNet's typical 500x375 size
    with the training transform: what one DataLoader worker supplies. The pictures are the built-in CIFAR-10
    slice upscaled (smoother than photographs, so their files are smaller and decode somewhat faster)."""
    images, _ = load_cifar10(builtin_path("cifar10-mini"))
    n = 64
    for i in range(n):
        folder = tmp_path / "train" / f"n{i % 4:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        picture = Image.fromarray(images[i].permute(1, 2, 0).numpy()).resize((500, 375), Image.BICUBIC)
        picture.save(folder / f"{i}.JPEG", quality=90)
    for split_folder in (tmp_path / "train").iterdir():
        (tmp_path / "val" / split_folder.name).mkdir(parents=True)
        (tmp_path / "val" / split_folder.name / "0.JPEG").write_bytes(next(split_folder.iterdir()).read_bytes())
    train, _ = image_folders(tmp_path, 224, 256)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def epoch() -> None:
        for x, _ in loader(train, 32, 0, torch.Generator().manual_seed(0), pin_memory=False):
            x.sum()

    try:
        benchmark.pedantic(epoch, rounds=5, iterations=1, warmup_rounds=1)
    finally:
        torch.set_num_threads(threads)
    samples_per_s = n / benchmark.stats.stats.median
    benchmark.extra_info["samples_per_s"] = samples_per_s
    SUMMARY["data/imagenet_decode_one_worker"] = {
        "samples_per_s": samples_per_s,
        "median_s": benchmark.stats.stats.median,
    }
    assert samples_per_s > 0
