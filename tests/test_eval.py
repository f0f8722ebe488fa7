"""`python -m nasbench eval` end to end on the tiny preset, cutout by hand, and its error paths."""

import pytest
import torch

import nasbench.eval.cnn as cnn_eval
from nasbench.cli import main
from nasbench.eval.cnn import CnnEvalTask, cutout
from nasbench.eval.trainer import resolve_eval_config
from nasbench.results import RunRecord
from nasbench.spaces.cnn import PUBLISHED, CnnSpace

TINY = ["eval", "--preset", "tiny", "--device", "cpu", "--quiet"]
CNN = ["--space", "cnn"]


def only_dir(out):
    (run_dir,) = list((out / "cnn").iterdir())
    return run_dir


def test_eval_by_name_end_to_end(tmp_path, capsys):
    assert main([*TINY, *CNN, "--genotype", "DARTS_V2", "--out", str(tmp_path)]) == 0
    run_dir = only_dir(tmp_path)
    record = RunRecord.load(run_dir / "record.json")
    assert record.status == "completed" and record.searcher == "eval" and record.preset == "tiny"
    assert CnnSpace().parse_genotype(record.genotype) == PUBLISHED["DARTS_V2"]
    m = record.metrics
    assert 0.0 <= m["test_acc"] <= 100.0 and m["test_loss"] > 0
    assert m["params_m"] > 0 and m["mult_adds_m"] > 0 and m["eval_device_hours"] > 0 and m["eval_peak_mem_mib"] > 0
    assert "test set" not in record.data and "1017 test images" in record.data
    # drop-path rises linearly from 0 (reference code): 0.2 * epoch / 2 epochs; lr follows the cosine
    assert [e["drop_path_prob"] for e in record.epochs] == pytest.approx([0.0, 0.1])
    assert [e["lr"] for e in record.epochs] == pytest.approx([0.025, 0.0125])
    assert (run_dir / "checkpoint.pt").exists()
    assert f"test_acc {m['test_acc']:.2f}" in capsys.readouterr().out


def search_record(path, genotype_text, searcher="darts1", space="cnn", **metrics):
    """A completed search's record at ``path``, returning ``genotype_text``, with ``metrics`` already in it."""
    record = RunRecord(
        searcher=searcher, space=space, seed=0, preset="tiny", config={}, provenance={}, data="", status="completed"
    )
    record.genotype = genotype_text
    record.metrics.update(metrics)
    record.save(path)
    return path


def test_eval_of_a_record_adds_test_accuracy_to_it(tmp_path):
    path = search_record(tmp_path / "search" / "record.json", CnnSpace().format_genotype(PUBLISHED["DARTS_V1"]))
    assert main([*TINY, "--record", str(path), "--out", str(tmp_path / "out"), "--set", "epochs=1"]) == 0
    search = RunRecord.load(path)
    evaluation = RunRecord.load(only_dir(tmp_path / "out") / "record.json")
    assert search.metrics["test_acc"] == evaluation.metrics["test_acc"]
    assert search.metrics["eval_device_hours"] == evaluation.metrics["eval_device_hours"] > 0
    assert search.metrics["eval_params_m"] == evaluation.metrics["params_m"]
    assert search.metrics["eval_record"].endswith("record.json") and search.status == "completed"


def test_interrupted_eval_resumes_to_the_same_result(tmp_path, monkeypatch):
    args = [*TINY, *CNN, "--genotype", "DARTS_V2", "--set", "epochs=3"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    straight = RunRecord.load(only_dir(tmp_path / "a") / "record.json")

    original, calls = cnn_eval.cutout, {"n": 0}

    def interrupting(images, length, gen):
        calls["n"] += 1
        if calls["n"] > 3:  # two steps per epoch: inside epoch 2
            raise KeyboardInterrupt
        return original(images, length, gen)

    with monkeypatch.context() as m:
        m.setattr(cnn_eval, "cutout", interrupting)
        assert main([*args, "--out", str(tmp_path / "b")]) == 130
    run_dir = only_dir(tmp_path / "b")
    assert RunRecord.load(run_dir / "record.json").status == "interrupted"
    assert main([*TINY, *CNN, "--genotype", "DARTS_V2", "--out", str(tmp_path / "b"), "--resume"]) == 0
    resumed = RunRecord.load(run_dir / "record.json")
    assert [e["train_loss"] for e in resumed.epochs] == [e["train_loss"] for e in straight.epochs]
    assert resumed.metrics["test_acc"] == straight.metrics["test_acc"]


def test_cutout_zeroes_the_square_around_a_drawn_centre():
    images = torch.ones(3, 2, 8, 8)
    out = cutout(images, 4, torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)  # the same draws, checked with loops
    cy, cx = torch.randint(0, 8, (3, 1), generator=gen), torch.randint(0, 8, (3, 1), generator=gen)
    for b in range(3):
        for y in range(8):
            for x in range(8):
                inside = int(cy[b]) - 2 <= y < int(cy[b]) + 2 and int(cx[b]) - 2 <= x < int(cx[b]) + 2
                assert (out[b, :, y, x] == 0).all() if inside else (out[b, :, y, x] == 1).all()
    assert torch.equal(cutout(images, 0, torch.Generator()), images)


def test_paper_preset_is_the_published_protocol():
    cfg = resolve_eval_config(CnnEvalTask, "paper", None, {})
    assert (cfg.layers, cfg.channels, cfg.epochs, cfg.batch_size) == (20, 36, 600, 96)
    assert (cfg.cutout, cfg.drop_path, cfg.auxiliary_weight, cfg.w_lr, cfg.grad_clip) == (16, 0.2, 0.4, 0.025, 5.0)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--genotype", "DARTS_V2", "--space", "nb201"], "the nb201 space has no evaluation from scratch"),
        (["--genotype", "DARTS_V2"], "it fits cnn, rnn; say which space with --space"),
        ([], "--record PATH/record.json or --genotype NAME"),
        (["--genotype", "DARTS_V2", "--space", "cnn", "--set", "bogus=1"], "unknown key 'bogus'"),
        (["--genotype", "DARTS_V2", "--space", "cnn", "--preset", "huge"], "unknown eval preset 'huge'"),
        (["--genotype", "NOT_A_CELL"], "no space reads it (cnn: not a genotype"),
    ],
)
def test_bad_eval_flags_get_a_clear_message(args, message, tmp_path, capsys):
    assert main(["eval", "--device", "cpu", *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
