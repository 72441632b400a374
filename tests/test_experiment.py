"""The experiment entrypoint and the sweep callback, in process on the tiny data: what a multirun job writes and
where, how the parent run, its children and the comparison come about, and a failed variant."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf, open_dict

from pipeline import compare
from pipeline.config.schema import plain_settings
from pipeline.core.errors import reports_user_errors
from pipeline.core.files import write_npz
from pipeline.experiment import run_experiment, tuned
from pipeline.sweeps.callback import SWEEP_FILE, SweepTracking
from pipeline.sweeps.jobs import SweepJob, launcher_threads, sweep_job, threads_per_job, with_job_outputs
from pipeline.sweeps.study import SETTINGS_ATTR
from pipeline.tracking import runs
from pipeline.tracking.runs import load_run_id
from pipeline.tracking.store import connect
from tests.helpers.configs import tiny_config
from tests.helpers.repos import REPO

LR = {"train.learning_rate": optuna.distributions.FloatDistribution(1e-3, 1e-2, log=True)}


def test_job_outputs_go_to_the_job_folder_and_inputs_stay_shared(tmp_path):
    cfg = with_job_outputs(tiny_config(), tmp_path / "job")
    assert {k: v for k, v in cfg.paths.items()} == {
        "raw": "data/raw",
        "downloads": "data/downloads",
        "prepared": "data/prepared",
        **{
            k: str(tmp_path / "job" / k)
            for k in ("models", "checkpoints", "metrics", "predictions", "label_issues", "reports", "plots", "tune")
        },
    }


def test_threads_per_job_share_the_cores():
    assert threads_per_job(None, 2) is None and threads_per_job(1, 8) is None
    assert threads_per_job(2, 2) == 1 and threads_per_job(4, 16) == 4 and threads_per_job(8, 2) == 1


@pytest.mark.parametrize(("launcher", "threads"), [("basic", None), ("parallel", 1), ("local", 1), ("slurm", 2)])
def test_each_launcher_gives_its_jobs_their_threads(launcher, threads):
    """joblib's workers share the cores; a submitit job (SLURM or local) gets what it reserved (cpus_per_task),
    not every core of a node it shares."""
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert launcher_threads(cfg.hydra.launcher, cores=2) == threads


def test_the_slurm_launcher_is_submitits_with_its_wait_bounded():
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    # By name: another test of the same process may have imported Hydra's launcher module anew (another class object)
    launcher = get_class(cfg.hydra.launcher._target_)
    assert f"{SlurmLauncher.__module__}.{SlurmLauncher.__qualname__}" in {
        f"{c.__module__}.{c.__qualname__}" for c in launcher.__mro__
    }
    assert cfg.hydra.launcher.timeout_min > 0 and cfg.hydra.launcher.mem_gb > 0
    assert cfg.hydra.launcher.lost_after_min == 5


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow  # a real training and its report, which starts a process for the PDFs: in the full suite only
def test_an_experiment_job_writes_only_inside_its_folder(tiny):
    """train -> evaluate -> label issues -> report for one variant: every output in the job folder, none in the repository's own
    models/, metrics/, predictions/, reports/ or plots/ (a sweep once overwrote plots/)."""
    # One test set, few pictures: what is checked is where the files go, not what they show.
    cfg = tiny_config(["model=plain1", "data.test_sets=[mnist]", "report.confused_pairs=1", "report.grid_size=4"])
    before = files_under(Path.cwd())
    accuracy = run_experiment(cfg, Path("multirun/job0"), SweepJob("model=plain1", None, "model=plain1"))
    assert 0.0 <= accuracy <= 1.0
    new = files_under(Path.cwd()) - before
    outside = {f for f in new if not f.startswith(("multirun/job0/", "mlruns/"))}
    assert not outside, outside
    job = Path("multirun/job0")
    for f in (
        "models/model.keras",
        "metrics/test.json",
        "metrics/test_details.json",
        "predictions/mnist.npz",
        "metrics/label_issues.json",
        "label_issues/mnist.csv",
        "reports/mnist/label_issues.csv",
        "reports/summary.pdf",
        "plots/history.csv",
        "plots/per_class/mnist.csv",
    ):
        assert (job / f).is_file(), f
    run = MlflowClient().get_run(load_run_id(job / "models" / "run.json"))
    assert run.info.status == "FINISHED" and run.info.run_name == "model=plain1"
    assert run.data.metrics["test.mnist.accuracy"] == pytest.approx(accuracy)


@pytest.fixture
def in_hydra() -> Iterator[None]:
    """Hydra started on conf/, as in the process that runs a multirun's callbacks (the callback composes each
    variant's config with it)."""
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        yield


def sweep_config(tmp_path: Path, sweep: list[str]) -> DictConfig:
    """The config a multirun hands its callbacks (inside `in_hydra`): the sweep's overrides and folder in its hydra
    node."""
    cfg = compose("config", return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.overrides.task = sweep
        cfg.hydra.sweep.dir = str(tmp_path)
    return cfg


def job_run(
    cfg: DictConfig, name: str, parent: str, accuracy: float | None, seed: int = 42, wrong: int | None = None
) -> None:
    """A variant's run as a job leaves it (the job itself is the test above): FINISHED with its metrics, or
    FAILED without them; with `wrong`, its MNIST predictions wrong on the first `wrong` of 100 images."""
    connect(cfg.tracking)
    status = "FINISHED" if accuracy is not None else "FAILED"
    variant = name.split(",seed=")[0]
    with mlflow.start_run(run_name=name, parent_run_id=parent, tags={"sweep.variant": variant}):
        mlflow.log_param("seed", seed)
        if accuracy is not None:
            mlflow.log_metrics({"test.mnist.accuracy": accuracy, "test.emnist_digits.accuracy": accuracy - 0.1})
        if wrong is not None:
            y = np.zeros(100, dtype=np.uint8)
            probs = np.eye(10, dtype=np.float32)[np.where(np.arange(100) < wrong, 1, 0)]
            path = Path(f"predictions-{name}/mnist.npz")
            write_npz(path, probs=probs, y_true=y)
            mlflow.log_artifact(str(path), "predictions")
        mlflow.end_run(status)


def test_the_sweep_callback_opens_a_parent_and_compares_its_children(tiny, in_hydra, tmp_path):
    cfg = sweep_config(tmp_path / "sweep", ["experiment=fast", "model=plain1,plain3"])
    callback = SweepTracking()
    callback.on_multirun_start(cfg)
    sweep = OmegaConf.load(tmp_path / "sweep" / SWEEP_FILE)
    assert list(sweep.varied) == ["model"]
    parent = MlflowClient().get_run(sweep.parent_run_id)
    assert parent.info.status == "RUNNING" and parent.data.tags["sweep.varied"] == "model"

    job_run(cfg, "model=plain1", sweep.parent_run_id, 0.9)
    job_run(cfg, "model=plain3", sweep.parent_run_id, 0.95)
    callback.on_multirun_end(cfg)
    parent = MlflowClient().get_run(sweep.parent_run_id)
    assert parent.info.status == "FINISHED"
    table = (tmp_path / "sweep" / "comparison.md").read_text()
    assert "| model=plain1 | FINISHED |" in table and "| 0.9500 | 0.8500 | 0.1000 |" in table
    logged = {a.path for a in MlflowClient().list_artifacts(sweep.parent_run_id, "comparison")}
    assert logged == {
        f"comparison/{name}" for name in ("comparison.md", "comparison.csv", "runs.csv", "comparison.png")
    }


def test_a_sweep_over_seeds_compares_variants_with_intervals_and_paired_tests(tiny, in_hydra, tmp_path, capsys):
    cfg = sweep_config(tmp_path / "sweep", ["model=plain1,plain3", "seed=1,2"])
    callback = SweepTracking()
    callback.on_multirun_start(cfg)
    parent = OmegaConf.load(tmp_path / "sweep" / SWEEP_FILE).parent_run_id
    # plain3 gets the first 20 (seed 1) and 16 (seed 2) of 100 images wrong that plain1 gets right: p = 2 * 0.5**16
    for seed, plain3_wrong in ((1, 20), (2, 16)):
        job_run(cfg, f"model=plain1,seed={seed}", parent, 0.99, seed, wrong=0)
        job_run(cfg, f"model=plain3,seed={seed}", parent, 1 - plain3_wrong / 100, seed, wrong=plain3_wrong)
    callback.on_multirun_end(cfg)

    table = (tmp_path / "sweep" / "comparison.md").read_text()
    assert "**model=plain1**" in table
    # t(0.975, 1) * 0.02828 / sqrt(2) = 0.2541 either side, the top cut at 100%
    assert "| model=plain3 | 2 | 82.00% ± 2.83 | [56.59, 100.00] |" in table
    assert "| -17.00 | < 0.0001 | worse |" in table
    parent_run = MlflowClient().get_run(parent)
    assert parent_run.data.tags["compare.best"] == "model=plain1"
    assert parent_run.data.metrics["compare.mnist.model_plain3.p_vs_best"] == pytest.approx(2 * 0.5**16)
    assert parent_run.data.metrics["compare.mnist.model_plain3.seeds"] == 2

    # Compared again by hand at a stricter level, p = 3.05e-5 is no longer a difference.
    assert compare.main([parent, "--alpha", "0.00001", "--out", str(tmp_path / "again")]) == 0
    assert "| -17.00 | < 0.0001 | not distinguishable |" in (tmp_path / "again" / "comparison.md").read_text()
    assert "**model=plain1**" in capsys.readouterr().out


@pytest.mark.slow  # two real trainings: in the full suite, not the fast subset
def test_a_sweep_crowns_the_best_variants_best_run_champion(tiny, tmp_path, capsys, monkeypatch):
    """Real jobs, trained and evaluated on tiny data: the best variant's best seed is `models:/…@champion`. The
    crowning reads the registered models and the test metrics, not what label issues and the report add (a job with
    them: test_an_experiment_job_writes_only_inside_its_folder), so here the jobs leave those two steps out."""
    monkeypatch.setattr("pipeline.experiment.find_issues", lambda cfg: None)
    monkeypatch.setattr("pipeline.experiment.report", lambda cfg: None)
    job_cfg = tiny_config(["model=plain1", "data.test_sets=[mnist]"])
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = sweep_config(tmp_path / "sweep", ["model=plain1", "seed=1,2"])
        callback = SweepTracking()
        callback.on_multirun_start(cfg)
    parent = OmegaConf.load(tmp_path / "sweep" / SWEEP_FILE).parent_run_id
    accuracies = {}
    for seed in (1, 2):
        job = SweepJob(f"seed={seed}", parent, "default")  # as sweep_job names them: by the swept key alone
        accuracies[seed] = run_experiment(OmegaConf.merge(job_cfg, {"seed": seed}), Path(f"job{seed}"), job)
    callback.on_multirun_end(cfg)

    client = MlflowClient()
    champion = client.get_model_version_by_alias("handwriting-mnist", "champion")
    best_seed = max(accuracies, key=lambda s: (accuracies[s], -s))  # the first of equals
    assert client.get_run(champion.run_id).data.params["seed"] == str(best_seed)
    assert client.get_run(parent).data.tags["compare.champion"] == f"handwriting-mnist/{champion.version}"
    assert (
        f"sweep: champion: handwriting-mnist version {champion.version} (run {champion.run_id}"
        in capsys.readouterr().out
    )


def test_a_sweep_of_runs_without_registered_models_has_no_champion(tiny, in_hydra, tmp_path, capsys):
    cfg = sweep_config(tmp_path / "sweep", ["model=plain1,plain3"])
    callback = SweepTracking()
    callback.on_multirun_start(cfg)
    parent = OmegaConf.load(tmp_path / "sweep" / SWEEP_FILE).parent_run_id
    job_run(cfg, "model=plain1", parent, 0.9)
    job_run(cfg, "model=plain3", parent, 0.8)
    callback.on_multirun_end(cfg)
    assert "sweep: no champion: run " in capsys.readouterr().err
    assert "compare.champion" not in MlflowClient().get_run(parent).data.tags


def test_comparing_a_run_that_is_not_a_sweep_is_one_line(tiny, user_error):
    _, err = user_error(lambda: compare.main(["0123456789abcdef"]))
    assert err.startswith("error: run 0123456789abcdef: ") and err.count("\n") == 1


def test_a_failed_variant_fails_the_sweep_but_keeps_the_comparison(tiny, in_hydra, tmp_path):
    cfg = sweep_config(tmp_path / "sweep", ["model=plain1,plain3"])
    callback = SweepTracking()
    callback.on_multirun_start(cfg)
    parent = OmegaConf.load(tmp_path / "sweep" / SWEEP_FILE).parent_run_id
    job_run(cfg, "model=plain1", parent, 0.9)
    job_run(cfg, "model=plain3", parent, None)
    with pytest.raises(SystemExit) as exit_:
        callback.on_multirun_end(cfg)
    assert exit_.value.code == 1
    assert MlflowClient().get_run(parent).info.status == "FAILED"
    assert "| model=plain3 | FAILED |" in (tmp_path / "sweep" / "comparison.md").read_text()  # the runs' table


def test_a_sweep_that_compared_nothing_fails(tiny, in_hydra, tmp_path, capsys):
    cfg = sweep_config(tmp_path / "sweep", ["experiment=fast", "model=plain1,plain3"])
    callback = SweepTracking()
    callback.on_multirun_start(cfg)
    with pytest.raises(SystemExit) as exit_:
        callback.on_multirun_end(cfg)
    assert exit_.value.code == 1
    assert "2 of 2 runs did not finish: model=plain1 (no run), model=plain3 (no run)" in capsys.readouterr().err
    parent = OmegaConf.load(tmp_path / "sweep" / SWEEP_FILE).parent_run_id
    assert MlflowClient().get_run(parent).info.status == "FAILED"


def test_the_same_sweep_run_again_reopens_its_parent_and_ends_once_every_job_finished(tiny, in_hydra, tmp_path, capsys):
    cfg = sweep_config(tmp_path / "sweep", ["experiment=fast", "model=plain1,plain3"])
    SweepTracking().on_multirun_start(cfg)
    parent = OmegaConf.load(tmp_path / "sweep" / SWEEP_FILE).parent_run_id
    job_run(cfg, "model=plain1", parent, 0.9)
    job_run(cfg, "model=plain3", parent, None)
    with pytest.raises(SystemExit):
        SweepTracking().on_multirun_end(cfg)
    assert "1 of 2 runs did not finish: model=plain3 (FAILED)" in capsys.readouterr().err

    SweepTracking().on_multirun_start(cfg)  # the same command, in the same folder
    assert OmegaConf.load(tmp_path / "sweep" / SWEEP_FILE).parent_run_id == parent
    assert MlflowClient().get_run(parent).info.status == "RUNNING"
    assert f"sweep: parent MLflow run {parent} (sweep experiment=fast model=plain1,plain3) again: 1 of 2 runs " in (
        capsys.readouterr().out
    )
    job_run(cfg, "model=plain3", parent, 0.95)  # trained anew, in a new run: the failed one no longer counts
    SweepTracking().on_multirun_end(cfg)
    assert MlflowClient().get_run(parent).info.status == "FINISHED"
    table = (tmp_path / "sweep" / "comparison.md").read_text()
    assert "| model=plain3 | FINISHED |" in table and "FAILED" not in table
    other = sweep_config(tmp_path / "sweep", ["experiment=fast", "model=plain1"])
    SweepTracking().on_multirun_start(other)  # another command in that folder: a parent of its own
    assert OmegaConf.load(tmp_path / "sweep" / SWEEP_FILE).parent_run_id != parent


@pytest.mark.usefixtures("in_hydra")
def test_a_sweep_with_a_variant_out_of_range_is_refused_before_its_parent_run(tmp_path, monkeypatch, capsys):
    """Every variant is checked first; a problem only some variants have names them."""
    monkeypatch.chdir(tmp_path)
    sweep = ["model=plain1,plain3", "train.epochs=1,2", "train.warmup_epochs=2", "evaluate.limit=0"]
    with pytest.raises(SystemExit) as exit_:
        SweepTracking().on_multirun_start(sweep_config(tmp_path / "sweep", sweep))
    assert exit_.value.code == 1
    assert capsys.readouterr().err == (
        "error: evaluate.limit=0: must be null or an integer ≥ 1; "
        "train.warmup_epochs=2: must be a number in [0, 1] (at most train.epochs) "
        "(in model=plain1,train.epochs=1 / model=plain3,train.epochs=1)\n"
    )
    assert os.listdir(tmp_path) == []  # no MLflow store, no sweep folder


@pytest.mark.usefixtures("in_hydra")
def test_a_sweep_with_a_variant_that_does_not_compose_is_refused_with_hydras_message(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        SweepTracking().on_multirun_start(sweep_config(tmp_path / "sweep", ["model=plain1,nope"]))
    assert capsys.readouterr().err.startswith("error: In 'config': Could not find 'model/nope'")
    assert os.listdir(tmp_path) == []


@pytest.fixture
def multirun_job(tmp_path):
    """Makes HydraConfig what a multirun job with the given overrides sees, for `sweep_job`; cleared afterwards."""

    def set_job(overrides: list[str]) -> None:
        with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=overrides, return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.mode = "MULTIRUN"
            cfg.hydra.sweep.dir = str(tmp_path)
        HydraConfig.instance().set_config(cfg)

    yield set_job
    HydraConfig.instance().cfg = None


def test_a_job_finds_its_parent_and_its_name(tmp_path, multirun_job):
    (tmp_path / SWEEP_FILE).write_text('{"parent_run_id": "abc", "varied": ["model", "augment"]}')
    multirun_job(["model=plain3", "augment=none", "train.epochs=1"])
    assert sweep_job("default name") == SweepJob("model=plain3,augment=none", "abc", "model=plain3,augment=none")


def test_a_repeated_job_is_named_by_its_seed_and_grouped_without_it(tmp_path, multirun_job):
    (tmp_path / SWEEP_FILE).write_text('{"parent_run_id": "abc", "varied": ["model", "seed"]}')
    multirun_job(["model=plain3", "seed=7"])
    job = sweep_job("default name")
    assert job == SweepJob("model=plain3,seed=7", "abc", "model=plain3")
    assert job.tags() == {"sweep.variant": "model=plain3"}


def test_a_job_outside_a_sweep_keeps_its_default_name(tmp_path, multirun_job):
    multirun_job(["model=plain3"])  # no sweep.json: e.g. a multirun without the callback
    assert sweep_job("default name") == SweepJob("default name", None, "default name")
    assert sweep_job("default name").tags() == {}


def test_a_failed_sweep_variant_returns_nan_and_is_marked_failed(tiny):
    """Outside a sweep an error propagates; inside one (a parent run) the job returns NaN so the rest go on."""
    Path("data/prepared/mnist.npz").unlink()
    cfg = tiny_config(["model=plain1"])
    with pytest.raises(FileNotFoundError, match="mnist.npz"):
        run_experiment(cfg, Path("job_a"), SweepJob("alone", None, "alone"))
    connect(cfg.tracking)
    parent = MlflowClient().create_run(mlflow.get_experiment_by_name(cfg.tracking.experiment).experiment_id)
    assert math.isnan(run_experiment(cfg, Path("job_b"), SweepJob("in a sweep", parent.info.run_id, "in a sweep")))
    runs = mlflow.search_runs(filter_string="attributes.run_name = 'in a sweep'", output_format="list")
    assert [r.info.status for r in runs] == ["FAILED"]


def test_best_of_a_study_trains_its_network_whole_with_its_best_values(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # left by an earlier test's connect: the study is here
    searched = tiny_config(["model=plain3", "train.epochs=3"])
    storage = f"sqlite:///{tmp_path}/mlruns/optuna.db"
    (tmp_path / "mlruns").mkdir()
    study = optuna.create_study(storage=storage, study_name="lr-plain3", direction="maximize")
    study.set_user_attr(SETTINGS_ATTR, runs.flatten(plain_settings(searched)))
    study.add_trial(optuna.trial.create_trial(params={"train.learning_rate": 0.004}, distributions=LR, value=0.9))
    study.add_trial(optuna.trial.create_trial(params={"train.learning_rate": 0.002}, distributions=LR, value=0.95))

    cfg = tuned(tiny_config(["tune.best_of=lr-plain3", "seed=7"]))  # the default network until the study says

    assert OmegaConf.to_container(cfg.model) == OmegaConf.to_container(searched.model)  # no key of compact's left
    assert (cfg.train.learning_rate, cfg.train.epochs, cfg.seed) == (0.002, 3, 7)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (False, "tune.best_of=lr-plain3: no such study in sqlite:///"),
        (True, "tune.best_of=lr-plain3: the study has no completed trial yet"),
    ],
)
def test_best_of_a_study_not_there_or_not_tuned_is_one_line(make, message, tmp_path, monkeypatch, user_error):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "mlruns").mkdir()
    if make:
        optuna.create_study(storage=f"sqlite:///{tmp_path}/mlruns/optuna.db", study_name="lr-plain3")
    cfg, job = tiny_config(["tune.best_of=lr-plain3"]), SweepJob("lr", None, "lr")
    _, err = user_error(lambda: reports_user_errors(run_experiment)(cfg, tmp_path / "job", job))
    assert err.startswith(f"error: {message}") and len(err.strip().splitlines()) == 1, err
