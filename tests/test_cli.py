"""`python -m nasbench` end to end on the tiny preset, and its error paths."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nasbench.cli import main
from nasbench.results import RunRecord
from nasbench.searchers.darts import DartsSearcher

TINY = ["run", "--searcher", "darts1", "--space", "cnn", "--preset", "tiny", "--quiet"]


def only_run(out):
    (run_dir,) = list((out / "cnn").iterdir())
    return run_dir


def test_run_end_to_end_writes_a_complete_record(tmp_path, capsys):
    assert main([*TINY, "--out", str(tmp_path), "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    run_dir = only_run(tmp_path)
    record = RunRecord.load(run_dir / "record.json")
    assert record.status == "completed" and record.error is None
    assert record.searcher == "darts1" and record.space == "cnn" and record.seed == 3 and record.preset == "tiny"
    assert record.config["space_config"]["channels"] == 4 and record.config["train"]["epochs"] == 2
    assert record.provenance["torch_version"] == torch.__version__ and record.provenance["git_commit"]
    assert "built-in slice" in record.data and "built-in slice" in printed
    assert [e["epoch"] for e in record.epochs] == [1, 2]
    for epoch in record.epochs:
        assert {"train_loss", "arch_loss", "val_loss", "val_acc", "genotype", "seconds", "peak_mem_mib"} <= set(epoch)
        assert 0.0 <= epoch["val_acc"] <= 100.0 and epoch["seconds"] > 0
        assert len(epoch["arch_weights"]["normal"]) == 5  # the tiny cell's 5 edges
    assert record.genotype == record.epochs[-1]["genotype"] and record.genotype in printed
    assert record.metrics["search_device_hours"] == pytest.approx(sum(e["seconds"] for e in record.epochs) / 3600)
    assert record.metrics["peak_mem_mib"] > 0
    assert str(run_dir / "record.json") in printed and "--preset paper" in printed
    assert (run_dir / "checkpoint.pt").exists() and "epoch 2/2" in (run_dir / "log.txt").read_text()


def test_list_names_every_searcher_and_space(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "darts1" in out and "Liu et al." in out and "cnn" in out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--searcher", "nope", "--space", "cnn"], "unknown searcher 'nope'; known searchers: .*darts1"),
        (["--searcher", "darts1", "--space", "nope"], "unknown space 'nope'; known spaces: .*cnn"),
        (["--searcher", "darts1", "--space", "cnn", "--set", "bogus=1"], "unknown key 'bogus'"),
        (["--searcher", "darts1", "--space", "cnn", "--set", "epochs=many"], "'many' is not a valid int"),
        (["--searcher", "darts1", "--space", "cnn", "--preset", "huge"], "unknown preset 'huge'.*paper"),
        (
            ["--searcher", "darts1", "--space", "cnn", "--device", "cuda:7"]
            if not torch.cuda.is_available()
            else ["--searcher", "darts1", "--space", "cnn", "--device", "tpu"],
            "--device",
        ),
    ],
)
def test_bad_flags_get_a_clear_message(args, message, tmp_path, capsys):
    assert main(["run", *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert pytest.importorskip("re").search(message, err)


def test_missing_data_folder_says_what_was_expected(tmp_path, capsys):
    assert main([*TINY, "--out", str(tmp_path), "--data", str(tmp_path / "nowhere")]) == 2
    assert "data_batch_1..5" in capsys.readouterr().err


def test_nan_loss_fails_the_run_and_keeps_the_record(tmp_path, capsys):
    assert main([*TINY, "--out", str(tmp_path), "--set", "w_lr=1e30", "grad_clip=1e38", "epochs=3"]) == 1
    err = capsys.readouterr().err
    record = RunRecord.load(only_run(tmp_path) / "record.json")
    assert record.status == "failed" and "non-finite" in record.error and "w_lr" in record.error
    assert "run failed" in err


def interrupt_after(monkeypatch, calls: int):
    original, count = DartsSearcher.step, {"n": 0}

    def step(self, train, val):
        count["n"] += 1
        if count["n"] > calls:
            raise KeyboardInterrupt
        return original(self, train, val)

    monkeypatch.setattr(DartsSearcher, "step", step)


def comparable(record: RunRecord):
    timings = ("seconds", "peak_mem_mib", "hessian_seconds")
    return [{k: v for k, v in e.items() if k not in timings} for e in record.epochs]


@pytest.mark.parametrize("warm_start", ["false", "true"])  # true: the eigenvalue's start vector is checkpointed
def test_interrupt_then_resume_equals_an_uninterrupted_run(tmp_path, monkeypatch, capsys, warm_start):
    args = [*TINY, "--set", "epochs=3", "--set", f"hessian_warm_start={warm_start}"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    straight = RunRecord.load(only_run(tmp_path / "a") / "record.json")

    with monkeypatch.context() as m:
        interrupt_after(m, calls=3)  # two steps per epoch: stops inside epoch 2
        assert main([*args, "--out", str(tmp_path / "b")]) == 130
    run_dir = only_run(tmp_path / "b")
    interrupted = RunRecord.load(run_dir / "record.json")
    assert interrupted.status == "interrupted" and len(interrupted.epochs) == 1
    assert "--resume" in capsys.readouterr().err

    assert main([*args, "--out", str(tmp_path / "b"), "--resume"]) == 0  # finds the unfinished run
    resumed = RunRecord.load(run_dir / "record.json")
    assert resumed.status == "completed"
    assert comparable(resumed) == comparable(straight)
    a = torch.load(only_run(tmp_path / "a") / "checkpoint.pt", weights_only=False)["searcher"]["model"]
    b = torch.load(run_dir / "checkpoint.pt", weights_only=False)["searcher"]["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_nothing_to_resume(tmp_path, capsys):
    assert main([*TINY, "--out", str(tmp_path), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_corrupt_record_is_a_clear_error(tmp_path):
    path = tmp_path / "record.json"
    path.write_text("{not json")
    with pytest.raises(Exception, match="not valid JSON"):
        RunRecord.load(path)
    path.write_text(json.dumps({"schema": 99}))
    with pytest.raises(Exception, match="schema version 99"):
        RunRecord.load(path)


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "nasbench", "list"], capture_output=True, text=True, check=True)
    assert "darts1" in out.stdout


def test_checkpoint_from_other_code_is_a_clear_error_on_resume(tmp_path, monkeypatch, capsys):
    with monkeypatch.context() as m:
        interrupt_after(m, calls=3)
        assert main([*TINY, "--set", "epochs=3", "--out", str(tmp_path)]) == 130
    run_dir = only_run(tmp_path)
    state = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    model = state["searcher"]["model"]
    model["cells.0.edges.0.ops.5.1.running_mean"] = model.pop("cells.0.pools.0.ops.max_pool_3x3.1.running_mean")
    torch.save(state, run_dir / "checkpoint.pt")  # as a checkpoint from before the pools were shared
    capsys.readouterr()
    assert main([*TINY, "--set", "epochs=3", "--out", str(tmp_path), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "does not fit this version of the code" in err and "Traceback" not in err


def test_version_and_dry_run(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert "nasbench 0.1.0" in capsys.readouterr().out
    assert (
        main(["run", "--searcher", "gdas", "--space", "nb201", "--preset", "tiny", "--dry-run", "--set", "tau_min=0.5"])
        == 0
    )
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["searcher_config"]["tau_min"] == 0.5 and resolved["train"]["weight_step_first"] is True


def test_list_shows_settings_presets_and_genotypes_and_survives_a_broken_plugin(monkeypatch, capsys):
    from importlib.metadata import EntryPoint

    from nasbench.registry import SEARCHERS

    broken = EntryPoint("broken", "no_such_module:Nothing", "nasbench.searchers")
    monkeypatch.setattr(SEARCHERS, "_entry_points", {**SEARCHERS._discover(), "broken": broken})
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    assert "warning: the searcher 'broken' could not be loaded" in err and "Traceback" not in err
    assert "tau_max: float = 10.0" in out and "presets: paper, small, cpu, tiny" in out
    assert "published genotypes: DARTS_V1, DARTS_V2, PC_DARTS" in out and "darts1" in out


def test_list_into_a_closed_pipe_prints_no_traceback():
    proc = subprocess.run(
        f"{sys.executable} -m nasbench list | head -1", shell=True, capture_output=True, text=True, check=True
    )
    assert "searcher" in proc.stdout or "protocol" in proc.stdout
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_built_in_entry_points_equal_the_registry():
    from importlib.metadata import entry_points

    import tomllib

    from nasbench.registry import SEARCHERS, SPACES

    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    declared = project["project"]["entry-points"]
    for group, registry in (("nasbench.searchers", SEARCHERS), ("nasbench.spaces", SPACES)):
        ours = {ep.name for ep in entry_points(group=group) if ep.dist is not None and ep.dist.name == "nasbench"}
        assert set(declared[group]) == ours, "reinstall (pip install -e .): pyproject.toml and the metadata differ"
        assert ours <= set(registry.names())
