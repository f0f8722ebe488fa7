"""CIFAR-10 in the standard python-batch layout, held as one uint8 tensor and augmented on the device."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nasbench.data import builtin_path
from nasbench.data.streams import SearchData, epoch_generator
from nasbench.errors import UserError

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
FOLDER = "cifar-10-batches-py"
# Per-channel statistics of the CIFAR-10 training set, as in the DARTS reference code.
MEAN = (0.49139968, 0.48215827, 0.44653124)
STD = (0.24703233, 0.24348505, 0.26158768)


def _batch_folder(root: Path) -> Path:
    """Accept the batch folder itself or a folder that contains ``cifar-10-batches-py``."""
    for candidate in (root, root / FOLDER):
        if (candidate / TRAIN_FILES[0]).exists():
            return candidate
    raise UserError(
        f"no CIFAR-10 python batches under {root}: expected {FOLDER}/data_batch_1..5 and test_batch "
        "(the 'CIFAR-10 python version'); pass --download to fetch them, or leave out --data to use the "
        "built-in slice"
    )


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.exists():
        raise UserError(f"CIFAR-10 batch {path} is missing; the folder needs data_batch_1..5 and test_batch")
    try:
        with path.open("rb") as f:
            entry = pickle.load(f, encoding="latin1")
        data = np.asarray(entry["data"], dtype=np.uint8)
        labels = np.asarray(entry["labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"CIFAR-10 batch {path} is damaged ({type(exc).__name__}: {exc})") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise UserError(f"CIFAR-10 batch {path}: data has shape {data.shape}, expected (N, 3072)")
    if labels.shape != (data.shape[0],):
        raise UserError(f"CIFAR-10 batch {path}: {len(labels)} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise UserError(f"CIFAR-10 batch {path}: labels outside 0..9 ({labels.min()}..{labels.max()})")
    return data, labels


def load_cifar10(root: Path, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 [N, 3, 32, 32] and labels as int64 [N] of the ``train`` or ``test`` split.

    Shapes and label ranges are checked instead of the official MD5 sums, so a slice of the data set
    (such as the built-in one) loads too.
    """
    folder = _batch_folder(Path(root))
    names = TRAIN_FILES if split == "train" else (TEST_FILE,)
    parts = [_read_batch(folder / name) for name in names]
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return torch.from_numpy(data).view(-1, 3, 32, 32), torch.from_numpy(labels)


def download_cifar10(root: Path) -> Path:
    """Fetch the full data set with torchvision into ``root``; a clear message where there is no network."""
    from torchvision.datasets import CIFAR10

    try:
        CIFAR10(str(root), train=True, download=True)
    except Exception as exc:  # torchvision raises URLError, OSError, RuntimeError depending on the failure
        raise UserError(f"could not download CIFAR-10 into {root}: {exc}") from None
    return Path(root)


def augment(images: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """DARTS' training augmentation on a uint8 batch [B, 3, 32, 32]: random 32x32 crop of the image
    zero-padded by 4 pixels, random horizontal flip. Returns uint8 of the same shape."""
    b, _, h, w = images.shape
    padded = F.pad(images, (4, 4, 4, 4))
    dev = images.device
    dy = torch.randint(0, 9, (b,), generator=gen, device=dev)
    dx = torch.randint(0, 9, (b,), generator=gen, device=dev)
    rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None]  # [B, 1, H, 1]
    cols = (dx[:, None] + torch.arange(w, device=dev))[:, None, None, :]  # [B, 1, 1, W]
    batch_idx = torch.arange(b, device=dev)[:, None, None, None]
    chan_idx = torch.arange(3, device=dev)[None, :, None, None]
    cropped = padded[batch_idx, chan_idx, rows, cols]
    flip = torch.rand(b, generator=gen, device=dev) < 0.5
    return torch.where(flip[:, None, None, None], cropped.flip(3), cropped)


def normalize(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> float, scaled to [0, 1] and standardised per channel."""
    mean = torch.tensor(MEAN, device=images.device, dtype=dtype).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device, dtype=dtype).view(1, 3, 1, 1)
    return (images.to(dtype) / 255.0 - mean) / std


class ImageStream:
    """Mini-batches of a uint8 image tensor that lives on the run's device, as float32 [B, 3, 32, 32]
    (channels-last in memory with ``channels_last``)."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        seed: int,
        stream: int,
        train: bool,
        channels_last: bool = False,
    ) -> None:
        if len(images) < batch_size and train:
            raise UserError(
                f"a search split of {len(images)} images is smaller than one batch of {batch_size}; "
                "lower batch_size with --set batch_size=N"
            )
        self.images, self.labels = images, labels
        self.batch_size, self.seed, self.stream, self.train = batch_size, seed, stream, train
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    @property
    def samples_per_batch(self) -> int:
        return self.batch_size

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Training streams are shuffled, augmented and drop the last partial batch; scoring streams
        keep the stored order, unaugmented."""
        dev = self.images.device
        if not self.train:
            order = torch.arange(len(self.images), device=dev)
            gen = None
        else:
            gen = epoch_generator(self.seed, epoch, self.stream, dev)
            order = torch.randperm(len(self.images), generator=gen, device=dev)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            images = self.images[idx]
            if self.train:
                images = augment(images, gen)
            yield normalize(images).contiguous(memory_format=self.memory_format), self.labels[idx]


def cifar10_folder(path: str | None, download: bool) -> tuple[Path, str]:
    """The folder to read (``path=None``: the built-in slice), downloaded first if asked, and its name in words."""
    root = Path(path) if path else builtin_path("cifar10-mini")
    if download:
        if not path:
            raise UserError("--download needs --data PATH: the folder to download CIFAR-10 into")
        download_cifar10(root)
    return root, ("CIFAR-10 built-in slice" if not path else f"CIFAR-10 from {root}")


def check_precision(train: Any, device: torch.device) -> None:
    """Refuse a search whose channels-last image batches would meet a broken kernel: torch 2.14's CPU weight
    gradient of a dilated depthwise convolution (dil_conv_5x5) in bfloat16 and channels-last returns NaN in
    about one call in four (8 of 30 on this project's 2-core EPYC); float32, or bfloat16 in NCHW, are fine.
    Spaces without image batches (``rnn``) are not affected and not checked."""
    if device.type == "cpu" and train.autocast != "off" and train.channels_last:
        raise UserError(
            f"autocast={train.autocast} with channels_last=true gives NaN gradients on the CPU (a torch kernel "
            "bug in bfloat16 dilated depthwise convolutions); add --set channels_last=false, or use a GPU"
        )


def cifar10_search_data(
    path: str | None, train_cfg: Any, device: torch.device, seed: int, download: bool = False
) -> SearchData:
    """The DARTS search splits of the CIFAR-10 training set (``path=None``: the built-in slice).

    ``train_cfg`` is the run's ``TrainConfig`` (batch size, train portion); the test set is never read.
    """
    check_precision(train_cfg, device)
    root, what = cifar10_folder(path, download)
    images, labels = load_cifar10(root, "train")
    split = int(len(images) * train_cfg.train_portion)  # reference code: first part w, rest alpha
    images, labels = images.to(device), labels.to(device)
    b, nhwc = train_cfg.batch_size, train_cfg.channels_last
    return SearchData(
        description=f"{what}: {split} images train the weights, {len(images) - split} the architecture",
        source=str(root),
        train=ImageStream(images[:split], labels[:split], b, seed, stream=0, train=True, channels_last=nhwc),
        val=ImageStream(images[split:], labels[split:], b, seed, stream=1, train=True, channels_last=nhwc),
        score=ImageStream(images[split:], labels[split:], b, seed, stream=2, train=False, channels_last=nhwc),
        info={"num_classes": 10},
    )
