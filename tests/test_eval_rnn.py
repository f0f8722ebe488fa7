"""PTB evaluation: the paper's model size, the ASGD switch, averaged weights, and the command end to end."""

import copy
import dataclasses

import pytest
import torch

from nasbench.cli import main
from nasbench.eval.command import stored_evaluation_of
from nasbench.eval.rnn import RnnEvalTask, switch_to_asgd
from nasbench.eval.trainer import resolve_eval_config
from nasbench.metrics.flops import params_m
from nasbench.results import RunRecord
from nasbench.spaces.rnn import PUBLISHED
from nasbench.spaces.rnn_network import Regime, RnnNetwork


def test_published_ptb_model_has_about_23m_parameters():
    # Liu et al. 2019, table 2: DARTS (second order) on PTB, 23M parameters (10,000 words, 850 units)
    net = RnnNetwork(PUBLISHED["DARTS_V2"], vocab_size=10_000, units=850, regime=Regime())
    assert params_m(net) == pytest.approx(23.0, abs=0.1)


def test_asgd_switch_by_hand():
    """DARTS' train.py: len(best_val_loss) > nonmono and val_loss > min(best_val_loss[:-nonmono]), checked before
    the current loss joins best_val_loss."""
    assert not switch_to_asgd([5.0, 4.0, 3.0], 2.5, nonmono=2)  # still improving
    assert switch_to_asgd([5.0, 4.0, 4.5, 4.4], 4.2, nonmono=2)  # 4.2 > min(5.0, 4.0) = 4.0
    # with the current loss counted among the earlier ones, this epoch would already switch (4.2 > 4.0)
    assert not switch_to_asgd([5.0, 4.0, 4.5], 4.2, nonmono=2)  # 4.2 < min(5.0)
    assert not switch_to_asgd([5.0, 6.0], 7.0, nonmono=2)  # too few epochs to judge


def tiny_task(init_seed: int = 0) -> RnnEvalTask:
    """The tiny evaluation of seed 0 (its windows), its weights initialised from ``init_seed``."""
    torch.manual_seed(init_seed)
    cfg = resolve_eval_config(RnnEvalTask, "tiny", None, {"steps_per_epoch": "4"})  # ASGD averages from step 3
    return RnnEvalTask(PUBLISHED["DARTS_V1"], cfg, torch.device("cpu"), 0, None, False)


def test_asgd_validates_with_averaged_weights_and_resumes_identically():
    task = tiny_task()
    task.train_epoch(0, progress=False)
    task.opt = task._asgd()
    task.train_epoch(1, progress=False)
    first = next(iter(task.net.parameters()))
    current = first.detach().clone()
    with task.averaged_weights():
        assert torch.equal(first, task.opt.state[first]["ax"]) and not torch.equal(first, current)
    assert torch.equal(first, current)

    state, rng = copy.deepcopy(task.state_dict()), torch.get_rng_state()
    expected = task.train_epoch(2, progress=False)
    fresh = tiny_task(init_seed=5)  # other initial weights, which the loaded state replaces
    fresh.load_state_dict(state)
    torch.set_rng_state(rng)
    assert fresh.averaging and fresh.train_epoch(2, progress=False) == expected


def test_rnn_eval_end_to_end_reports_test_perplexity(tmp_path, capsys):
    args = ["eval", "--space", "rnn", "--genotype", "DARTS_V2", "--preset", "tiny", "--device", "cpu", "--quiet"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    (run_dir,) = list((tmp_path / "rnn").iterdir())
    record = RunRecord.load(run_dir / "record.json")
    assert record.status == "completed" and record.space == "rnn"
    assert 1.0 < record.metrics["test_ppl"] < 1e5 and record.metrics["params_m"] > 0
    assert all(e["optimizer"] == "sgd" and e["val_ppl"] > 1.0 for e in record.epochs)
    assert f"test_ppl {record.metrics['test_ppl']:.2f}" in capsys.readouterr().out


def test_an_evaluation_from_before_the_jitter_resumes_with_the_lengths_it_ran(tmp_path):
    """Records written before window_jitter existed ran the search's lengths: resumed, they keep them."""
    cfg = resolve_eval_config(RnnEvalTask, "tiny", None, {})
    assert cfg.window_jitter == 5.0 and cfg.jitter() is not None
    old = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("window_jitter", "max_seq_len_delta")}
    config = {"eval": old, "source": "DARTS_V2", "search_record": None}
    record = RunRecord(
        searcher="eval", space="rnn", seed=0, preset="tiny", provenance={}, data="", config=config, status="interrupted"
    )
    record.save(tmp_path / "record.json")
    assert stored_evaluation_of(tmp_path).cfg.jitter() is None
