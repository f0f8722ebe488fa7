"""CIFAR-10 evaluation of a DARTS CNN genotype (Liu et al. 2019, sec. 3.2 and A.2): the test accuracy."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Any, ClassVar

import torch

from nasbench.bounds import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, Bounds, check_order
from nasbench.data.cifar10 import ImageStream, cifar10_folder, load_cifar10
from nasbench.data.streams import capped_steps, epoch_generator
from nasbench.errors import UserError
from nasbench.eval.trainer import EvalTask, train_steps
from nasbench.genotype import Genotype
from nasbench.metrics.flops import count_mult_adds, params_m
from nasbench.searchers.base import cosine_lr
from nasbench.spaces.cnn_network import CnnNetwork


@dataclass(frozen=True)
class CnnEvalConfig:
    """Training from scratch; defaults are the DARTS CIFAR-10 evaluation (Liu et al. 2019, sec. A.2)."""

    layers: int = 20  # A.2: a network of 20 cells
    channels: int = 36  # A.2: 36 initial channels
    epochs: int = 600  # A.2: 600 epochs
    batch_size: int = 96  # A.2: batch size 96
    w_lr: float = 0.025  # reference code: SGD, lr 0.025 cosine-annealed to 0
    w_lr_min: float = 0.0
    w_momentum: float = 0.9  # reference code: momentum 0.9
    w_weight_decay: float = 3e-4  # reference code: weight decay 3e-4
    grad_clip: float = 5.0  # reference code: gradient norm clipped at 5
    cutout: int = 16  # A.2: cutout of length 16 (0: none)
    drop_path: float = 0.2  # A.2: path dropout 0.2; reference code raises it linearly from 0 over the epochs
    auxiliary_weight: float = 0.4  # A.2: auxiliary tower with weight 0.4 (0: no auxiliary head)
    steps_per_epoch: int = 0  # 0: one pass over the training set per epoch; N > 0: at most N steps
    test_batches: int = 0  # 0: the whole test split; N > 0: its first N batches
    channels_last: bool = True  # speed only: batches in NHWC memory format (see the search's TrainConfig)

    bounds: ClassVar[dict[str, Bounds]] = {
        "layers": Bounds(3.0),  # reduction cells at 1/3 and 2/3 of the depth
        "channels": Bounds(2.0),
        **dict.fromkeys(("epochs", "batch_size"), AT_LEAST_ONE),
        **dict.fromkeys(("w_lr", "grad_clip"), POSITIVE),
        **dict.fromkeys(("w_lr_min", "w_weight_decay", "cutout", "auxiliary_weight"), NON_NEGATIVE),
        **dict.fromkeys(("steps_per_epoch", "test_batches"), NON_NEGATIVE),
        **dict.fromkeys(("w_momentum", "drop_path"), FRACTION),
    }

    def check(self) -> None:
        if self.channels % 2:
            raise UserError(f"eval channels={self.channels}: use an even number")
        check_order(self, "w_lr_min", "w_lr", "the schedule anneals down to it")


def cutout(images: torch.Tensor, length: int, gen: torch.Generator) -> torch.Tensor:
    """Zero one ``length`` x ``length`` square per image (DeVries & Taylor 2017), centred uniformly in the
    image and clipped at its border. images: [B, C, H, W], already normalised, so zero is the data mean,
    as in the reference code, which applies cutout after normalisation."""
    if length <= 0:
        return images
    b, _, h, w = images.shape
    dev = images.device
    cy = torch.randint(0, h, (b, 1), generator=gen, device=dev)
    cx = torch.randint(0, w, (b, 1), generator=gen, device=dev)
    rows = torch.arange(h, device=dev)[None, :]  # [1, H]
    cols = torch.arange(w, device=dev)[None, :]
    in_rows = (rows >= cy - length // 2) & (rows < cy + length // 2)  # [B, H]
    in_cols = (cols >= cx - length // 2) & (cols < cx + length // 2)  # [B, W]
    square = in_rows[:, :, None] & in_cols[:, None, :]  # [B, H, W]
    return images.masked_fill(square[:, None], 0.0)


class CnnEvalTask(EvalTask):
    space = "cnn"
    dataset = "cifar10"
    label = "CIFAR-10"
    metric = "test_acc"
    config_cls = CnnEvalConfig
    presets = {
        "paper": {},
        # A 2-core CPU budget on the built-in slice (5,085 training images; ~2.6 s a step on one thread):
        # 8 cells, 16 channels, 2 epochs of 79 steps.
        "small": {"layers": 8, "channels": 16, "epochs": 2, "batch_size": 64},
        # Seconds, for tests.
        "tiny": {"layers": 3, "channels": 4, "epochs": 2, "batch_size": 8, "steps_per_epoch": 2, "test_batches": 2},
    }

    def __init__(
        self, genotype: Genotype, cfg: CnnEvalConfig, device: torch.device, seed: int, path: str | None, download: bool
    ) -> None:
        """The whole CIFAR-10 training split trains the network; the test split scores it."""
        root, what = cifar10_folder(path, download)
        images, labels = load_cifar10(root, "train")
        test_images, test_labels = load_cifar10(root, "test")
        b, nhwc = cfg.batch_size, cfg.channels_last
        self.train = ImageStream(images.to(device), labels.to(device), b, seed, 0, train=True, channels_last=nhwc)
        self.test_stream = ImageStream(
            test_images.to(device), test_labels.to(device), b, seed, 1, train=False, channels_last=nhwc
        )
        self.description = f"{what}: {len(images)} training images train the network, {len(test_images)} test images"
        self.cfg, self.seed, self.device = cfg, seed, device
        self.net = CnnNetwork(genotype, cfg.channels, cfg.layers, num_classes=10, auxiliary=cfg.auxiliary_weight > 0)
        self.net.auxiliary_weight = cfg.auxiliary_weight
        self.net.to(device)
        self.opt = torch.optim.SGD(
            self.net.parameters(), lr=cfg.w_lr, momentum=cfg.w_momentum, weight_decay=cfg.w_weight_decay
        )

    def size(self) -> dict[str, float]:
        self.net.eval()  # the auxiliary head runs in training only; params_m leaves it out
        macs = count_mult_adds(self.net, (torch.zeros(1, 3, 32, 32, device=self.device),))["forward_mult_adds"]
        self.net.train()
        return {"params_m": params_m(self.net), "mult_adds_m": macs / 1e6}

    def train_epoch(self, epoch: int, progress: bool) -> dict[str, Any]:
        """SGD with cutout, drop-path (rising linearly from 0) and the auxiliary loss."""
        cfg, net = self.cfg, self.net
        net.train()
        net.drop_path_prob = cfg.drop_path * epoch / cfg.epochs
        lr = cosine_lr(epoch, cfg.epochs, cfg.w_lr, cfg.w_lr_min)
        for group in self.opt.param_groups:
            group["lr"] = lr
        n = capped_steps(len(self.train), cfg.steps_per_epoch)
        gen = epoch_generator(self.seed, epoch, stream=9, device=self.device)  # cutout's own stream
        batches = ((cutout(images, cfg.cutout, gen), labels) for images, labels in self.train.epoch(epoch))
        desc = f"eval epoch {epoch + 1}/{cfg.epochs}"
        train_loss = train_steps(net, self.opt, batches, n, cfg.grad_clip, desc, progress)
        return {"train_loss": train_loss, "lr": lr, "drop_path_prob": net.drop_path_prob}

    @torch.no_grad()
    def test(self) -> dict[str, float]:
        self.net.eval()
        totals: dict[str, float] = {}
        for batch in islice(self.test_stream.epoch(0), self.cfg.test_batches or None):
            for key, value in self.net.evaluate(batch).items():
                totals[key] = totals.get(key, 0.0) + float(value)
        count = max(totals.get("count", 0.0), 1.0)
        return {"test_loss": totals["loss_sum"] / count, "test_acc": 100.0 * totals["correct"] / count}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.net.state_dict(), "optimizer": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
