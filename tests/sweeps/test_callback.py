"""The sweep callback's pure pieces: which keys a sweep varies, and the name of each variant's run."""

from __future__ import annotations

import pytest

from pipeline.sweeps.callback import child_name, parse, varied_keys


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
