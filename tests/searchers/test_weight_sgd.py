"""`w_nesterov`: NAS-Bench-201's Nesterov SGD, reaching every searcher's weight optimiser, on in its paper preset."""

import pytest
import torch

from nasbench.config import resolve_config
from nasbench.errors import UserError
from nasbench.registry import SEARCHERS, SPACES
from nasbench.testing import build, steps, tiny_config


def preset_train(space: str, preset: str):
    cfg = resolve_config(
        SEARCHERS.get("darts1"), SPACES.get(space)(), searcher="darts1", preset=preset, seed=0,
        device="cpu", data=None, train_flags={}, set_pairs={},
    )  # fmt: skip
    return cfg.train


@pytest.mark.parametrize("searcher", ["darts1", "darts2", "pcdarts", "gdas", "randomws", "random"])
def test_every_weight_optimiser_follows_w_nesterov(searcher):
    for nesterov in (False, True):
        space, data, s = build(searcher, "nb201", w_nesterov=str(nesterov).lower())
        if searcher == "random":
            steps(s, data, 0, 1)  # random search builds each sample's optimiser when it starts training it
        opt = s.opt if searcher == "random" else s.w_opt
        assert isinstance(opt, torch.optim.SGD)
        assert opt.param_groups[0]["nesterov"] is nesterov and opt.param_groups[0]["momentum"] == 0.9


def test_nesterov_is_nas_bench_201s_paper_protocol_only_and_needs_momentum():
    assert preset_train("nb201", "paper").w_nesterov is True  # configs/nas-benchmark/algos/DARTS.config
    assert preset_train("cnn", "paper").w_nesterov is False  # DARTS' code: plain momentum
    assert preset_train("nb201", "cpu").w_nesterov is False  # the study's protocol, fixed before the setting
    with pytest.raises(UserError, match="w_nesterov=true needs momentum"):
        tiny_config("darts1", "nb201", w_nesterov="true", w_momentum="0")


@pytest.mark.parametrize(
    ("searcher", "first"),
    [("darts1", True), ("darts2", False), ("betadarts", False), ("sdarts-rs", False), ("darts-pt", False)],
)
def test_nb201_paper_preset_takes_each_methods_own_step_order(searcher, first):
    """NAS-Bench-201's DARTS-V1.py steps the weights first; its DARTS-V2.py and the beta-DARTS, SDARTS and
    DARTS-PT NAS-Bench-201 codes step alpha first. Other presets keep DARTS' order."""
    space = SPACES.get("nb201")()
    for preset, expected in (("paper", first), ("cpu", False)):
        cfg = resolve_config(SEARCHERS.get(searcher), space, searcher=searcher, preset=preset, seed=0, device="cpu",
                             data=None, train_flags={}, set_pairs={})  # fmt: skip
        assert cfg.train.weight_step_first is expected, (searcher, preset)
