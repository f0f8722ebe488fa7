"""ImageNet evaluation of a DARTS CNN genotype in the mobile setting (Liu et al. 2019, sec. A.2.3; reference
code's train_imagenet.py): 224x224 inputs, under 600M multiply-adds, top-1 and top-5 error on the
validation set (the papers' test set). PC-DARTS' own ImageNet protocol is the ``pcdarts`` preset."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

import torch

from nasbench.bounds import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, Bounds
from nasbench.data.imagenet import class_folders, image_folders, loader
from nasbench.data.streams import capped_steps, epoch_generator
from nasbench.errors import UserError
from nasbench.eval.trainer import EvalTask, train_steps
from nasbench.genotype import Genotype
from nasbench.metrics.flops import count_mult_adds, params_m
from nasbench.spaces.cnn_network import ImageNetNetwork

MOBILE_MULT_ADDS_M = 600.0  # the mobile setting's limit (DARTS sec. 3.4.1, after NASNet)
SCHEDULES = ("exponential", "linear")


@dataclass(frozen=True)
class ImageNetEvalConfig:
    """Training from scratch; defaults are DARTS' ImageNet evaluation (sec. A.2.3 and train_imagenet.py)."""

    layers: int = 14  # A.2.3: 14 cells
    channels: int = 48  # A.2.3: 48 initial channels
    image_size: int = 224  # mobile setting: 224x224 inputs (training crops and test centre crops)
    resize: int = 256  # reference code: test images resized to 256 before the centre crop
    epochs: int = 250  # A.2.3: 250 epochs
    batch_size: int = 128  # A.2.3: batch size 128
    w_lr: float = 0.1  # A.2.3: SGD, initial learning rate 0.1
    lr_schedule: str = "exponential"  # "exponential": w_lr * lr_gamma**epoch (DARTS); "linear": PC-DARTS'
    lr_gamma: float = 0.97  # A.2.3: decayed by 0.97 after each epoch
    warmup_epochs: int = 0  # epochs whose lr rises linearly to w_lr first (PC-DARTS: 5)
    w_momentum: float = 0.9  # reference code: momentum 0.9
    w_weight_decay: float = 3e-5  # A.2.3: weight decay 3e-5
    label_smoothing: float = 0.1  # reference code: label smoothing 0.1 (training loss, auxiliary included)
    auxiliary_weight: float = 0.4  # reference code: auxiliary tower with weight 0.4 (its README passes --auxiliary)
    drop_path: float = 0.0  # reference code: no drop-path on ImageNet (PC-DARTS' code neither)
    grad_clip: float = 5.0  # reference code: gradient norm clipped at 5
    workers: int = 4  # speed only: processes decoding images (reference code: 4; PC-DARTS': 32)
    steps_per_epoch: int = 0  # 0: one pass over train/ per epoch; N > 0: at most N steps
    test_batches: int = 0  # 0: the whole val/ split; N > 0: its first N batches
    channels_last: bool = True  # speed only: batches in NHWC memory format

    bounds: ClassVar[dict[str, Bounds]] = {
        "layers": Bounds(3.0),  # reduction cells at 1/3 and 2/3 of the depth
        "channels": Bounds(2.0),
        "image_size": Bounds(32.0),  # the last cells see 1/32 of it
        **dict.fromkeys(("resize", "epochs", "batch_size"), AT_LEAST_ONE),
        **dict.fromkeys(("w_lr", "grad_clip", "lr_gamma"), POSITIVE),
        **dict.fromkeys(("w_weight_decay", "auxiliary_weight", "warmup_epochs", "workers"), NON_NEGATIVE),
        **dict.fromkeys(("steps_per_epoch", "test_batches"), NON_NEGATIVE),
        **dict.fromkeys(("w_momentum", "drop_path", "label_smoothing"), FRACTION),
    }

    def check(self) -> None:
        if self.lr_schedule not in SCHEDULES:
            raise UserError(f"lr_schedule={self.lr_schedule!r}: use one of {', '.join(SCHEDULES)}")
        if self.resize < self.image_size:
            raise UserError(
                f"resize={self.resize} is below image_size={self.image_size}: test images are resized, then "
                "centre-cropped to image_size"
            )
        if self.channels % 2:
            raise UserError(f"eval channels={self.channels}: use an even number (the stem halves it)")
        if self.auxiliary_weight > 0 and self.image_size < 224:
            raise UserError(
                f"image_size={self.image_size} with the auxiliary head: it pools the last cells' map (1/32 of the "
                "input, 7x7 at 224) with a 5x5 window to 2x2, so it needs image_size >= 224; set auxiliary_weight=0 "
                "for smaller inputs"
            )


def imagenet_lr(epoch: int, cfg: ImageNetEvalConfig) -> float:
    """The learning rate of ``epoch`` (0-based). ``exponential``: w_lr * gamma**epoch (DARTS). ``linear``
    (PC-DARTS' adjust_lr): down to 0 over the first epochs - 5 epochs, then a five times gentler slope over the
    last 5. A warm-up replaces the first ``warmup_epochs`` with w_lr * (epoch + 1) / warmup_epochs."""
    if epoch < cfg.warmup_epochs:
        return cfg.w_lr * (epoch + 1) / cfg.warmup_epochs
    if cfg.lr_schedule == "exponential":
        return cfg.w_lr * cfg.lr_gamma**epoch
    main = cfg.epochs - 5
    if cfg.epochs - epoch > 5:
        return cfg.w_lr * (main - epoch) / main
    return cfg.w_lr * (cfg.epochs - epoch) / (main * 5)


class ImageNetEvalTask(EvalTask):
    space = "cnn"
    dataset = "imagenet"
    label = "ImageNet"
    metric = "top1_acc"
    table_keys = ("top1_err", "top5_err")
    table_header = "ImageNet top-1 / top-5 err (%)"
    score_kind = "pct"
    config_cls = ImageNetEvalConfig
    presets = {
        "paper": {},
        # PC-DARTS' ImageNet evaluation (Xu et al. 2020, sec. 4.3; its train_imagenet.py): batch 1024, lr 0.5,
        # the linear schedule after 5 warm-up epochs; everything else as DARTS.
        "pcdarts": {"batch_size": 1024, "w_lr": 0.5, "lr_schedule": "linear", "warmup_epochs": 5},
        # A CPU smoke run of the protocol, not a result: 8 cells of 16 channels, 100 steps of 32 images.
        "small": {"layers": 8, "channels": 16, "epochs": 1, "batch_size": 32, "steps_per_epoch": 100,
                  "test_batches": 20, "workers": 2},
        # Seconds, for tests: the paper's input size (the auxiliary head needs it), 3 cells of 4 channels, NCHW
        # (torch 2.14's CPU backward of a channels-last 1x1 stride-2 convolution with 8 or fewer channels, as
        # in the first cell's FactorizedReduce here, corrupts the heap; from 16 channels it is exact).
        "tiny": {"layers": 3, "channels": 4, "epochs": 2, "batch_size": 4, "steps_per_epoch": 2, "test_batches": 2,
                 "workers": 0, "channels_last": False},
    }  # fmt: skip
    # the preset a method's own cells are evaluated with where its paper's protocol differs from DARTS'
    method_presets = {"pcdarts": "pcdarts", "PC_DARTS": "pcdarts"}

    def __init__(
        self,
        genotype: Genotype,
        cfg: ImageNetEvalConfig,
        device: torch.device,
        seed: int,
        path: str | None,
        download: bool,
    ) -> None:
        if download or not path:
            raise UserError(
                "ImageNet has no built-in slice and cannot be downloaded here (its licence asks for registration): "
                "download ILSVRC-2012 and pass --data DIR with train/<class>/ and val/<class>/ folders"
            )
        root = Path(path)
        classes = class_folders(root)
        self.train_set, self.test_set = image_folders(root, cfg.image_size, cfg.resize)
        self.description = (
            f"ImageNet from {root}: {len(self.train_set)} train/ images train the network, {len(self.test_set)} "
            f"val/ images test it; {len(classes)} classes, {cfg.image_size}x{cfg.image_size} crops"
        )
        self.cfg, self.seed, self.device = cfg, seed, device
        self.net = ImageNetNetwork(genotype, cfg.channels, cfg.layers, len(classes), cfg.auxiliary_weight > 0)
        self.net.auxiliary_weight, self.net.label_smoothing = cfg.auxiliary_weight, cfg.label_smoothing
        self.net.to(device)
        self.opt = torch.optim.SGD(
            self.net.parameters(), lr=cfg.w_lr, momentum=cfg.w_momentum, weight_decay=cfg.w_weight_decay
        )

    def _batches(self, data: Any, generator: torch.Generator | None) -> Any:
        memory = torch.channels_last if self.cfg.channels_last else torch.contiguous_format
        pin = self.device.type == "cuda"
        for images, labels in loader(data, self.cfg.batch_size, self.cfg.workers, generator, pin):
            yield images.to(self.device, memory_format=memory, non_blocking=pin), labels.to(self.device)

    def size(self) -> dict[str, Any]:
        self.net.eval()  # the auxiliary head runs in training only; params_m leaves it out
        side = self.cfg.image_size
        macs = count_mult_adds(self.net, (torch.zeros(1, 3, side, side, device=self.device),))["forward_mult_adds"]
        self.net.train()
        mult_adds_m = macs / 1e6
        return {
            "params_m": params_m(self.net),
            "mult_adds_m": mult_adds_m,
            "mobile_setting": side == 224 and mult_adds_m < MOBILE_MULT_ADDS_M,
        }

    def size_note(self, size: dict[str, Any]) -> str:
        side, macs = self.cfg.image_size, size["mult_adds_m"]
        if side != 224:
            return f"mobile setting: not applicable at {side}x{side} inputs (it is defined at 224x224)"
        verdict = "met" if size["mobile_setting"] else "NOT met: the papers' ImageNet tables would not admit it"
        return f"mobile setting (under {MOBILE_MULT_ADDS_M:.0f}M multiply-adds at 224x224): {macs:.0f}M, {verdict}"

    def train_epoch(self, epoch: int, progress: bool) -> dict[str, Any]:
        """SGD with label smoothing, the auxiliary loss and the epoch's learning rate."""
        cfg, net = self.cfg, self.net
        net.train()
        net.drop_path_prob = cfg.drop_path * epoch / cfg.epochs
        lr = imagenet_lr(epoch, cfg)
        for group in self.opt.param_groups:
            group["lr"] = lr
        n = capped_steps(-(-len(self.train_set) // cfg.batch_size), cfg.steps_per_epoch)
        batches = self._batches(self.train_set, epoch_generator(self.seed, epoch, 0, torch.device("cpu")))
        desc = f"eval epoch {epoch + 1}/{cfg.epochs}"
        train_loss = train_steps(net, self.opt, batches, n, cfg.grad_clip, desc, progress)
        return {"train_loss": train_loss, "lr": lr}

    @torch.no_grad()
    def test(self) -> dict[str, float]:
        """Top-1 and top-5 accuracy and error (%) and the plain cross-entropy on val/."""
        self.net.eval()
        correct1 = correct5 = loss_sum = count = 0.0
        for images, labels in islice(self._batches(self.test_set, None), self.cfg.test_batches or None):
            logits = self.net(images)[0]
            top5 = logits.topk(min(5, logits.shape[1]), dim=1).indices  # [B, 5]
            hits = top5 == labels[:, None]
            correct1 += float(hits[:, 0].sum())
            correct5 += float(hits.any(dim=1).sum())
            loss_sum += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
            count += len(labels)
        count = max(count, 1.0)
        top1, top5_acc = 100.0 * correct1 / count, 100.0 * correct5 / count
        errors = {"top1_err": 100.0 - top1, "top5_err": 100.0 - top5_acc}
        return {"test_loss": loss_sum / count, "top1_acc": top1, "top5_acc": top5_acc, **errors}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.net.state_dict(), "optimizer": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
