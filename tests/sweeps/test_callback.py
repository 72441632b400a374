"""The sweep callback's pure pieces: which keys a sweep varies, the name of each variant's run, which jobs are done."""

from __future__ import annotations

import pytest

from pipeline.scoring.comparison import Run
from pipeline.sweeps.callback import (
    MAX_RUN_NAME,
    child_name,
    job_names,
    launcher_problems,
    parent_name,
    parse,
    unfinished,
    varied_keys,
)
from pipeline.sweeps.results import last_attempts


def test_varied_keys_and_child_names():
    overrides = ["experiment=fast", "model=a,b", "+train.lr=range(1,3)", "augment=none"]
    assert varied_keys(overrides) == ["model", "train.lr"]
    assert (
        child_name(["experiment=fast", "model=b", "+train.lr=2", "augment=none"], ["model", "train.lr"])
        == "model=b,train.lr=2"
    )


@pytest.mark.parametrize(
    "sweep",
    [
        "model=a,b",
        "model=range(1,3)",
        "model=choice(a,b)",
        "model=sort(b,a)",
        "model=shuffle(a,b)",
        "model=tag(x,choice(a,b))",
        "model=glob(*)",
        "model=interval(0,1)",
    ],
)
def test_hydras_sweeps_are_varied_keys(sweep):
    assert varied_keys(["experiment=fast", sweep]) == ["model"]


def test_a_list_value_is_one_value_not_a_sweep():
    assert varied_keys(["model.filters=[16,32]", "model.dense_units=[128]", "train.lr=1"]) == []
    assert varied_keys(["model.filters=[16,32],[8]"]) == ["model.filters"]


def test_prefixes_and_packages_are_not_part_of_the_key():
    assert varied_keys(["+train.lr=1,2", "++seed=1,2", "~augment", "model@backup=a,b"]) == [
        "train.lr",
        "seed",
        "model@backup",
    ]
    assert (
        child_name(["+train.lr=2", "++seed=1", "model@backup=a"], ["seed", "train.lr", "model@backup"])
        == "seed=1,train.lr=2,model@backup=a"
    )


def test_child_names_write_list_values_as_in_an_override():
    job = ["experiment=fast", "model.filters=[16,32]", "augment=none"]
    assert child_name(job, ["model.filters", "augment"]) == "model.filters=[16,32],augment=none"
    assert child_name(job, ["model"]) == "default"


def test_each_job_of_a_sweep_over_lists_is_named_by_its_list():
    (sweep,) = parse(["model.filters=[16,32],[8]"])
    jobs = [f"{sweep.get_key_element()}={value}" for value in sweep.sweep_string_iterator()]  # as Hydra's sweeper
    assert [child_name([job], ["model.filters"]) for job in jobs] == ["model.filters=[16,32]", "model.filters=[8]"]


def run(name: str, status: str) -> Run:
    return Run(run_id=f"{name}-{status}", name=name, variant=name, seed=None, status=status, metrics={}, tags={})


def test_every_job_of_a_sweep_is_named_in_its_order():
    assert job_names(["experiment=fast", "model=a,b", "seed=1,2"], ["model", "seed"]) == [
        "model=a,seed=1",
        "model=a,seed=2",
        "model=b,seed=1",
        "model=b,seed=2",
    ]


def test_a_job_is_done_only_when_its_run_finished():
    runs = [run("model=a", "FINISHED"), run("model=b", "KILLED")]
    assert unfinished(["model=a", "model=b", "model=c"], runs) == ["model=b (KILLED)", "model=c (no run)"]
    assert unfinished(["model=a"], runs) == []
    assert unfinished(["model=a"], []) == ["model=a (no run)"]  # a sweep that compared nothing is not done


def test_a_job_run_again_counts_by_its_last_attempt():
    first, again = run("model=b", "FAILED"), run("model=b", "FINISHED")
    assert last_attempts([run("model=a", "FINISHED"), first, again]) == [run("model=a", "FINISHED"), again]
    assert last_attempts([first, run("model=b", "KILLED")]) == [run("model=b", "KILLED")]
    # runs that finished all count, whatever their names (the comparison's own business)
    assert last_attempts([again, again]) == [again, again]


@pytest.mark.parametrize("minutes", [0, -1, "soon", True])
def test_the_bound_on_a_lost_job_must_be_minutes(minutes):
    assert launcher_problems({"lost_after_min": minutes}) == [
        f"hydra.launcher.lost_after_min={minutes}: must be a number of minutes > 0"
    ]


def test_launchers_without_the_bound_have_nothing_to_check():
    assert launcher_problems({"n_jobs": 2}) == [] and launcher_problems({"lost_after_min": 0.25}) == []


def test_a_sweeps_parent_is_named_by_its_command_within_mlflows_longest_run_name():
    assert parent_name("model=plain1,plain3 seed=1,2") == "sweep model=plain1,plain3 seed=1,2"
    long = " ".join(f"data.train_limit={n}" for n in range(40))  # PostgreSQL refused the parent run of such a sweep
    name = parent_name(long)
    assert len(name) == MAX_RUN_NAME and name.startswith("sweep data.train_limit=0 data.train_limit=1 ")
    assert parent_name(long) == name  # the same command again finds its parent by this name
    assert parent_name(long.replace("=39", "=41")) != name  # differing only past the cut
