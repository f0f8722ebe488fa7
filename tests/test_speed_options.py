"""The speed options of a search (``train.channels_last``, ``train.autocast``): what they change and what not."""

import pytest
import torch

from nasbench.errors import UserError
from nasbench.provenance import seed_all
from nasbench.registry import SPACES
from nasbench.runner import run, search_autocast
from nasbench.searchers.second_order import SecondOrderDarts
from tests.conftest import tiny_config

CPU = torch.device("cpu")


def search(tmp_path, **sets):
    return run(tiny_config("darts1", "cnn", **sets), tmp_path, progress=False, echo=lambda line: None)


def losses(record):
    return [e[k] for e in record.epochs for k in ("train_loss", "arch_loss", "val_loss")]


@pytest.mark.parametrize("setting,dtype", [("off", torch.float32), ("bf16", torch.bfloat16)])
def test_autocast_setting_picks_the_convolutions_dtype(setting, dtype):
    conv = torch.nn.Conv2d(3, 4, 3)
    with search_autocast(setting, CPU):
        assert conv(torch.randn(1, 3, 8, 8)).dtype == dtype


def test_unknown_autocast_is_refused():
    with pytest.raises(UserError, match="autocast='fp16': use one of bf16, off"):
        tiny_config("darts1", "cnn", autocast="fp16")


def test_bf16_with_channels_last_is_refused_on_the_cpu(tmp_path):
    with pytest.raises(UserError, match="channels_last=false"):
        search(tmp_path, autocast="bf16")


def test_memory_format_changes_kernels_not_results(tmp_path):
    nhwc, nchw = search(tmp_path / "a"), search(tmp_path / "b", channels_last="false")
    assert nhwc.config["train"]["channels_last"] and not nchw.config["train"]["channels_last"]
    assert losses(nhwc) == pytest.approx(losses(nchw), rel=1e-4)
    assert nhwc.genotype == nchw.genotype


def test_bf16_search_runs_close_to_float32(tmp_path):
    """The effect of bfloat16 on a tiny search: losses within 2 % (8 bits of mantissa), but not equal."""
    bf16 = search(tmp_path / "a", autocast="bf16", channels_last="false")
    fp32 = search(tmp_path / "b", channels_last="false")
    assert bf16.status == "completed"
    assert losses(bf16) == pytest.approx(losses(fp32), rel=0.02)
    assert losses(bf16) != losses(fp32)


def test_darts2_finite_difference_passes_stay_float32_under_autocast():
    cfg = tiny_config("darts2", "cnn", channels_last="false")
    seed_all(0)
    space = SPACES.get("cnn")()
    data = space.load_data(None, cfg, CPU, 0)
    s = SecondOrderDarts(space, cfg, data, CPU)
    dtypes = []
    s.model.stem[0].register_forward_hook(lambda mod, args, out: dtypes.append(out.dtype))
    batch = next(data.train.epoch(0))
    with search_autocast("bf16", CPU):
        s.model.loss(batch)  # a pass of the search itself
        s.train_alpha_grad(list(s.weights), batch, seed=0, state=None)
    assert dtypes == [torch.bfloat16, torch.float32]


def test_bf16_on_the_cpu_is_refused_only_where_batches_are_channels_last_images(tmp_path):
    cfg = tiny_config("darts1", "rnn", autocast="bf16", epochs="1", hessian_every="0")
    record = run(cfg, tmp_path, progress=False, echo=lambda line: None)  # channels_last means nothing to text
    assert record.status == "completed"
