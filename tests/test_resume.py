"""Resuming as a user does it, through the command line: what is kept, what is refused, and what a crash leaves."""

import json

import pytest

from nasbench.cli import main
from nasbench.eval.cnn import CnnEvalTask
from nasbench.results import RunRecord

RUN = ["run", "--searcher", "darts1", "--space", "nb201", "--preset", "tiny", "--quiet"]


@pytest.fixture
def completed(tmp_path):
    assert main([*RUN, "--out", str(tmp_path)]) == 0
    (run_dir,) = (tmp_path / "nb201").iterdir()
    return run_dir


def test_resuming_a_completed_and_evaluated_run_changes_nothing(completed, capsys):
    record = RunRecord.load(completed / "record.json")
    record.metrics.update(test_acc=93.1, eval_device_hours=0.5)  # as `eval --record` leaves it
    record.save(completed / "record.json")
    before = (completed / "record.json").read_bytes()
    capsys.readouterr()
    assert main([*RUN, "--resume", str(completed)]) == 0
    assert "holds a completed run; nothing was changed" in capsys.readouterr().out
    assert (completed / "record.json").read_bytes() == before


def test_resume_refuses_settings_that_differ_and_names_them(completed, capsys):
    record = json.loads((completed / "record.json").read_text())
    record["status"] = "interrupted"
    (completed / "record.json").write_text(json.dumps(record))
    assert main([*RUN, "--resume", str(completed), "--set", "arch_lr=0.01", "--epochs", "5"]) == 2
    err = capsys.readouterr().err
    assert "train.arch_lr=0.0003 (asked: 0.01)" in err and "train.epochs=2 (asked: 5)" in err


def test_a_folder_of_the_other_kind_or_space_is_refused(completed, tmp_path, capsys):
    assert main(["eval", "--resume", str(completed), "--quiet"]) == 2
    assert "holds a search, not an evaluation" in capsys.readouterr().err
    other_space = ["run", "--searcher", "darts1", "--space", "cnn", "--preset", "tiny", "--quiet"]
    assert main([*other_space, "--resume", str(completed)]) == 2
    assert "nb201" in capsys.readouterr().err


def test_a_crashed_evaluation_ends_failed_with_the_reason(tmp_path, monkeypatch, capsys):
    def crash(self, epoch, progress):
        raise RuntimeError("simulated crash in the middle of training")

    monkeypatch.setattr(CnnEvalTask, "train_epoch", crash)
    with pytest.raises(RuntimeError):
        main(
            ["eval", "--genotype", "DARTS_V2", "--space", "cnn", "--preset", "tiny", "--out", str(tmp_path), "--quiet"]
        )
    (record_path,) = tmp_path.rglob("record.json")
    record = RunRecord.load(record_path)
    assert record.status == "failed" and "simulated crash" in record.error
