import math

import pytest

from nasbench.bounds import FRACTION, OPEN_UNIT, POSITIVE, Bounds
from nasbench.config import TrainConfig, apply_overrides, config_from_dict, parse_set_flags
from nasbench.errors import UserError
from nasbench.registry import SEARCHERS, SPACES
from nasbench.spaces.cnn import CnnConfig
from nasbench.testing import preset_config
from tests.conftest import tiny_config


def sections():
    return {"train": TrainConfig(), "space": CnnConfig()}


def test_set_converts_to_the_field_type():
    out = apply_overrides(sections(), {"batch_size": "16", "w_lr": "0.1", "space.channels": "8"})
    assert out["train"].batch_size == 16 and isinstance(out["train"].batch_size, int)
    assert out["train"].w_lr == 0.1
    assert out["space"].channels == 8


def test_unknown_key_lists_the_allowed_ones():
    with pytest.raises(UserError, match="unknown key 'bogus'.*batch_size.*channels"):
        apply_overrides(sections(), {"bogus": "1"})


def test_bad_value_says_which_key_and_type():
    with pytest.raises(UserError, match="batch_size=lots.*not a valid int"):
        apply_overrides(sections(), {"batch_size": "lots"})


def test_out_of_range_values_are_refused():
    with pytest.raises(UserError, match="train_portion"):
        apply_overrides(sections(), {"train_portion": "1.5"})
    with pytest.raises(UserError, match="channels=7"):
        apply_overrides(sections(), {"channels": "7"})


def test_malformed_set_flag():
    with pytest.raises(UserError, match="expected key=value"):
        parse_set_flags(["epochs"])


def test_presets_layer_in_order():
    cfg = tiny_config("darts1", "cnn", batch_size="4")
    assert cfg.preset == "tiny"
    assert cfg.train.batch_size == 4  # --set beats the preset
    assert cfg.space_cfg.channels == 4  # the tiny preset beats the paper default
    assert cfg.train.w_momentum == 0.9  # the paper default where nothing overrides it


@pytest.mark.parametrize(
    "bounds, inside, outside, text",
    [
        (POSITIVE, (1e-12, 5.0), (0.0, -1.0, math.inf), "> 0"),
        (FRACTION, (0.0, 0.999), (1.0, -0.1, math.nan), "in [0, 1)"),
        (OPEN_UNIT, (0.5,), (0.0, 1.0), "in (0, 1)"),
        (Bounds(3.0), (3.0, 20.0), (2.0,), ">= 3"),
    ],
)
def test_a_range_holds_its_ends_as_written(bounds, inside, outside, text):
    assert str(bounds) == text
    assert all(bounds.holds(v) for v in inside) and not any(bounds.holds(v) for v in outside)


def test_every_value_out_of_range_is_named_in_one_error_with_its_range():
    bad = {"w_momentum": "1.5", "space.channels": "0", "space.layers": "2", "epochs": "0"}
    with pytest.raises(UserError) as caught:
        tiny_config("darts1", "cnn", **bad)
    message = str(caught.value)
    for part in ("train.w_momentum=1.5 (must be in [0, 1))", "space.layers=2 (must be >= 3)", "train.epochs=0"):
        assert part in message
    assert "space.channels=0 (must be >= 2)" in message
    tiny_config("darts1", "cnn", w_momentum="0.0", **{"space.layers": "3"})  # the ends that are inside


def test_an_ordered_pair_names_both_values_and_why():
    with pytest.raises(UserError, match=r"^w_lr_min=1.0 is above w_lr=0.025: the schedule anneals down to it$"):
        tiny_config("darts1", "nb201", w_lr_min="1.0")
    with pytest.raises(UserError, match="tau_min=20.0 is above tau_max=10.0"):
        tiny_config("gdas", "nb201", tau_min="20")
    with pytest.raises(UserError, match="perturb_eps_start=0.5 is above perturb_eps_end=0.3"):
        tiny_config("darts1", "nb201", perturb_eps_start="0.5")
    tiny_config("darts1", "nb201", w_lr_min="0.025", pt_lr_min="none")  # equal ends, and a floor left unset


def test_a_stored_configuration_without_a_newer_setting_resumes_with_its_old_behaviour():
    stored = tiny_config("darts2", "nb201").to_dict()
    del stored["train"]["hessian_warm_start"], stored["searcher_config"]["virtual_clip"]
    cfg = config_from_dict(stored, SEARCHERS.get("darts2"), SPACES.get("nb201")())
    assert TrainConfig().hessian_warm_start  # today's default, which the old run did not have
    assert cfg.train.hessian_warm_start is False and cfg.searcher_cfg.virtual_clip == "step"


def test_the_cpu_study_preset_keeps_the_measurement_it_began_with():
    t = preset_config("darts1", "nb201", "cpu", 0).train
    assert (t.hessian_tol, t.hessian_warm_start, t.hessian_iters) == (1e-3, False, 10)
    default = TrainConfig()
    assert (default.hessian_tol, default.hessian_warm_start, default.hessian_iters) == (1e-2, True, 20)
