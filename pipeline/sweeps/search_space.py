"""A search space (conf/search/<name>.yaml): which settings `python -m pipeline.tune` varies and over what, read in
Hydra's sweep grammar (the one Hydra's Optuna sweeper reads) and checked against the composed config before any
training; and what a trial's values become: overrides, a run's name, a config.

    train:
      learning_rate: tag(log, interval(3e-4, 1e-2))   # a float, on a log scale
      batch_size: choice(64, 128, 256)                 # one of these values
    model:
      dropout: interval(0.0, 0.5)                      # a float; int(interval(1, 4)) or range(1, 5) an integer
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from hydra.errors import HydraException

from pipeline.config.schema import MISSING, lookup, problems, shown
from pipeline.core.errors import UserError
from pipeline.tracking.runs import flatten

FORMS = "choice(…), interval(…), tag(log, interval(…)), int(interval(…)) or range(…)"


class SearchSpaceError(UserError):
    """A search space that cannot be searched; the message lists every problem, on one line."""

    def __init__(self, found: Sequence[str]):
        super().__init__("; ".join(found))
        self.problems = list(found)


@dataclass(frozen=True)
class Dimension:
    """One setting searched: a number between `low` and `high` (an integer when `integer`; `step` apart for a
    range; on a log scale when `log`), or one of `choices`."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    step: int | None = None
    choices: tuple[Any, ...] = ()

    def edges(self) -> list[Any]:
        """The values at the space's edges: every choice, or both bounds."""
        return list(self.choices) if self.choices else [self.low, self.high]


class Trial(Protocol):
    """What `suggest` asks of an Optuna trial."""

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...
    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...
    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


def parse_space(space: Mapping[str, Any], config: Mapping[str, Any]) -> list[Dimension]:
    """The dimensions of `space` (nested like the config, each leaf a sweep of Hydra's grammar), each a setting of
    `config` whose every edge is within the setting's allowed range; a SearchSpaceError lists what is not."""
    leaves = flatten(space)
    if not leaves:
        raise SearchSpaceError(["search.params: empty — name at least one setting to search"])
    dimensions, found = [], []
    for key, text in leaves.items():
        try:
            dimension = parse_dimension(key, text)
        except SearchSpaceError as err:
            found += err.problems
            continue
        problem = setting_problem(key, config) or edge_problem(dimension, config)
        if problem:
            found.append(problem)
        else:
            dimensions.append(dimension)
    if found:
        raise SearchSpaceError(found)
    return dimensions


def parse_dimension(key: str, text: Any) -> Dimension:
    """One setting's sweep, e.g. `tag(log, interval(1e-4, 1e-2))`; a SearchSpaceError naming the setting if it is not a
    sweep, or an empty one, or a log scale reaching zero or below."""
    where = f"search.params.{key}={shown(text)}"
    try:
        sweep = OverridesParser.create().parse_override(f"{key}={text}").value() if isinstance(text, str) else None
    except HydraException as err:
        raise SearchSpaceError([f"{where}: {str(err).splitlines()[0]}"]) from None
    if not isinstance(sweep, ChoiceSweep | IntervalSweep | RangeSweep):
        raise SearchSpaceError([f"{where}: must be one of {FORMS}"])
    log = "log" in sweep.tags
    if isinstance(sweep, ChoiceSweep):
        if not sweep.list:
            raise SearchSpaceError([f"{where}: an empty choice"])
        if log:
            raise SearchSpaceError([f"{where}: a log scale needs an interval, not a choice"])
        return Dimension(key, choices=tuple(sweep.list))
    if isinstance(sweep, RangeSweep):
        low, high, step = sweep.start, sweep.stop, sweep.step
        if not all(isinstance(v, int) for v in (low, high, step)) or step <= 0:
            raise SearchSpaceError([f"{where}: a range of integers upwards, e.g. range(1, 5) or range(8, 64, step=8)"])
        if high <= low:
            raise SearchSpaceError([f"{where}: an empty range (range's stop is not included)"])
        last = low + (high - 1 - low) // step * step  # Optuna's suggest_int includes its high
        dimension = Dimension(key, low, last, log, True, step)
        if last == low:
            return Dimension(key, choices=(low,))
    else:
        integer = isinstance(sweep.start, int) and isinstance(sweep.end, int)
        dimension = Dimension(key, sweep.start, sweep.end, log, integer)
    if dimension.low >= dimension.high:
        raise SearchSpaceError([f"{where}: an empty range (low must be below high)"])
    if log and dimension.low <= 0:
        raise SearchSpaceError([f"{where}: a log scale needs bounds above 0"])
    if log and dimension.step not in (None, 1):
        raise SearchSpaceError([f"{where}: a log scale cannot have a step"])
    return dimension


def setting_problem(key: str, config: Mapping[str, Any]) -> str | None:
    """Whether `key` names one setting of the composed config (not a section nor a config group)."""
    value = lookup(config, key)
    if value is MISSING:
        close = difflib.get_close_matches(key, list(flatten(config)), n=1)
        hint = f" — did you mean {close[0]}?" if close else ""
        return f"search.params.{key}: no such setting in the composed config{hint}"
    if isinstance(value, Mapping):
        return f"search.params.{key}: a section, not a setting — search its settings, e.g. {key}.<name>"
    return None


def edge_problem(dimension: Dimension, config: Mapping[str, Any]) -> str | None:
    """The config's rules (pipeline/config/schema.py) broken at an edge of the dimension: a trial there would
    stop with this error, after the trials before it had trained."""
    before = set(problems(config))
    for value in dimension.edges():
        new = [p for p in problems(with_values(config, {dimension.key: value})) if p not in before]
        if new:
            return f"search.params.{dimension.key}: at {shown(value)}, {new[0]}"
    return None


def suggest(trial: Trial, dimensions: Sequence[Dimension]) -> dict[str, Any]:
    """A value for each dimension, from the trial's sampler."""
    values = {}
    for d in dimensions:
        if d.choices:
            values[d.key] = trial.suggest_categorical(d.key, list(d.choices))
        elif d.integer:
            values[d.key] = trial.suggest_int(d.key, int(d.low), int(d.high), step=d.step or 1, log=d.log)
        else:
            values[d.key] = trial.suggest_float(d.key, float(d.low), float(d.high), log=d.log)
    return values


def as_overrides(values: Mapping[str, Any]) -> list[str]:
    """`train.learning_rate=0.0012345`: the values as Hydra overrides, at full precision, to train the trial again
    with `python -m pipeline.train <overrides>`."""
    return [f"{key}={shown(value)}" for key, value in values.items()]


def trial_name(number: int, values: Mapping[str, Any]) -> str:
    """`trial 3: train.learning_rate=0.00123,model.dropout=0.21`: the run's name, its floats to 3 digits."""
    short = {k: float(f"{v:.3g}") if isinstance(v, float) else v for k, v in values.items()}
    return f"trial {number}: " + ",".join(f"{k}={shown(v)}" for k, v in short.items())


def with_values(config: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the plain `config` with each dotted key set to its value."""
    copy = dict(config)
    for key, value in values.items():
        node = copy
        *parents, last = key.split(".")
        for part in parents:
            node[part] = dict(node[part])
            node = node[part]
        node[last] = value
    return copy
