"""ImageNet in the standard folder layout (``train/<class>/*.JPEG``, ``val/<class>/*.JPEG``, as torchvision's
``ImageFolder`` and ``ImageNet`` read it), decoded and augmented on the CPU as the DARTS and PC-DARTS
ImageNet evaluations do: random-resized crop, horizontal flip and colour jitter for training; resize and
centre crop for testing.

Decoding JPEGs is the cost here, not the network: one CPU core decodes and augments a few hundred
ImageNet-sized images a second (``docs/transfer.md`` has the figure measured on this machine), so a GPU
that trains on more needs that many cores' worth of ``workers``. Where there are not enough cores, decode
on the GPU (NVIDIA DALI) or from a pre-resized store (FFCV); neither is a dependency of the suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from PIL import UnidentifiedImageError
from torchvision import datasets, transforms

from nasbench.errors import UserError

SPLITS = ("train", "val")
# Per-channel statistics of ImageNet's training set (the reference code's normalisation).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
LAYOUT = "train/<class>/<image> and val/<class>/<image>, the same class folders in both"


def class_folders(root: Path) -> list[str]:
    """The class folder names shared by ``train/`` and ``val/``; a clear error for any other layout."""
    if not root.is_dir():
        raise UserError(f"ImageNet folder {root} does not exist; pass --data DIR with {LAYOUT}")
    missing = [split for split in SPLITS if not (root / split).is_dir()]
    if missing:
        raise UserError(
            f"ImageNet folder {root} lacks {' and '.join(f'{m}/' for m in missing)}: it needs {LAYOUT} (sort the "
            "validation images into class folders first, as pytorch/examples' ImageNet instructions do)"
        )
    classes = {split: sorted(d.name for d in (root / split).iterdir() if d.is_dir()) for split in SPLITS}
    if not classes["train"]:
        raise UserError(f"{root / 'train'} holds no class folders: it needs {LAYOUT}")
    only = {split: sorted(set(classes[split]) - set(classes[other])) for split, other in (SPLITS, SPLITS[::-1])}
    if any(only.values()):
        said = "; ".join(f"only in {split}/: {', '.join(names[:5])}" for split, names in only.items() if names)
        raise UserError(f"ImageNet folder {root}: train/ and val/ must hold the same class folders ({said})")
    return classes["train"]


def image_folders(root: Path, image_size: int, resize: int) -> tuple[datasets.ImageFolder, datasets.ImageFolder]:
    """(training set, test set) with the reference code's transforms; labels index ``class_folders``."""
    class_folders(root)
    normalize = transforms.Normalize(MEAN, STD)
    train = transforms.Compose(
        [
            transforms.RandomResizedCrop(image_size),
            transforms.RandomHorizontalFlip(),
            transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2),
            transforms.ToTensor(),
            normalize,
        ]
    )
    test = transforms.Compose(
        [transforms.Resize(resize), transforms.CenterCrop(image_size), transforms.ToTensor(), normalize]
    )
    return _folder(root / "train", train), _folder(root / "val", test)


def _folder(path: Path, transform: transforms.Compose) -> datasets.ImageFolder:
    try:
        return datasets.ImageFolder(str(path), transform)
    except FileNotFoundError as exc:  # a class folder without a single image file
        raise UserError(f"{path}: {exc}") from None


def loader(
    data: datasets.ImageFolder,
    batch_size: int,
    workers: int,
    generator: torch.Generator | None,
    pin_memory: bool,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of ``data``, shuffled by ``generator`` (None: in order). The generator also seeds the workers'
    augmentation (``workers`` > 0; with 0, augmentation draws from torch's global generator, which a
    checkpoint restores), so an epoch resumed from its checkpoint sees the same batches."""
    batches = torch.utils.data.DataLoader(
        data,
        batch_size=batch_size,
        shuffle=generator is not None,
        generator=generator,
        num_workers=workers,
        pin_memory=pin_memory,
    )
    try:
        yield from batches
    except (OSError, UnidentifiedImageError) as exc:  # a file that is not an image, or a truncated one
        raise UserError(f"an image under {data.root} could not be read ({type(exc).__name__}: {exc})") from None
