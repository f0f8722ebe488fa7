"""Live loggers mirror the run record: what TensorBoard and W&B hold is read back and compared with it."""

import sys

import numpy as np
import pytest

import nasbench
from nasbench.errors import UserError
from nasbench.loggers import heat_maps, make_loggers, scalars


def test_scalars_flatten_per_cell_values_and_leave_out_the_rest():
    stats = {
        "epoch": 3,
        "train_loss": 1.5,
        "early_stopped": False,
        "skip_count": {"normal": 2, "reduce": 0},
        "arch_weights": {"cell": [[0.5, 0.5]]},
        "genotype": "|skip~0|",
    }
    assert scalars(stats) == {"train_loss": 1.5, "skip_count/normal": 2.0, "skip_count/reduce": 0.0}
    assert heat_maps(stats)["cell"].shape == (1, 2)


def test_an_unknown_logger_is_refused(tmp_path):
    with pytest.raises(UserError, match="--log mlflow: use tensorboard or wandb"):
        make_loggers(["mlflow"], tmp_path, None)


def test_tensorboard_holds_every_epoch_of_the_record(tmp_path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    record = nasbench.search(
        "darts1", "nb201", preset="tiny", settings={"hessian_every": 1}, out=tmp_path, log_to=["tensorboard"]
    )
    (events_dir,) = list(tmp_path.rglob("tensorboard"))
    events = accumulator.EventAccumulator(str(events_dir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    for key in ("train_loss", "true_test_acc", "hessian_eig"):
        logged = [(e.step, e.value) for e in events.Scalars(key)]
        expected = [(e["epoch"], e[key]) for e in record.epochs]
        assert [s for s, _ in logged] == [s for s, _ in expected]
        np.testing.assert_allclose([v for _, v in logged], [v for _, v in expected], rtol=1e-6)
    (image_tag,) = events.Tags()["images"]
    assert image_tag == "arch_weights/cell" and len(events.Images(image_tag)) == len(record.epochs)


class FakeWandb:
    """Stands in for ``wandb``: keeps what was logged."""

    def __init__(self):
        self.logged, self.finished, self.init_kwargs = [], False, None

    def init(self, **kwargs):
        self.init_kwargs = kwargs
        return self

    def Image(self, array):
        return ("image", np.asarray(array).shape)

    def log(self, values, step):
        self.logged.append((step, values))

    def finish(self):
        self.finished = True


def test_wandb_gets_every_epoch_of_the_record(tmp_path, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    record = nasbench.search(
        "darts1", "nb201", preset="tiny", settings={"hessian_every": 0}, out=tmp_path, log_to=["wandb"]
    )
    assert fake.finished and fake.init_kwargs["config"] == record.config
    assert [step for step, _ in fake.logged] == [e["epoch"] for e in record.epochs]
    for (_, values), epoch in zip(fake.logged, record.epochs):
        assert values["train_loss"] == pytest.approx(epoch["train_loss"])
        assert values["true_test_acc"] == pytest.approx(epoch["true_test_acc"])
        assert values["arch_weights/cell"] == ("image", (6, 5))  # NAS-Bench-201: 6 edges, 5 ops


def test_wandb_offline_writes_its_run_beside_the_record(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    record = nasbench.search(
        "darts1", "nb201", preset="tiny", settings={"hessian_every": 0}, out=tmp_path, log_to=["wandb"]
    )
    (run_file,) = list(tmp_path.rglob("offline-run-*/*.wandb"))
    assert run_file.stat().st_size > 0
    assert len(list(run_file.parent.rglob("media/images/arch_weights/*.png"))) == len(record.epochs)
