"""A sweep's comparison: its runs grouped by variant over their seeds, each variant set against the best one, and
how sure each difference is.

`python -m pipeline.compare PARENT_RUN_ID` writes the comparison of any finished sweep again (the sweep's end does
the same by itself), e.g. with another metric or level. The statistics are pipeline/scoring/comparison.py's, its
tables pipeline/scoring/comparison_tables.py's; reading the sweep from MLflow and writing the comparison,
pipeline/sweeps/results.py's.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from mlflow.exceptions import MlflowException

from pipeline.core.errors import UserError, reports_user_errors
from pipeline.core.paths import CONF
from pipeline.scoring.comparison_tables import to_markdown
from pipeline.sweeps.ensemble import logged_ensembles
from pipeline.sweeps.results import sweep_runs, test_sets_of, write_comparison


@reports_user_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Compare a finished sweep again, e.g. with another metric or level. A run id that is not a finished sweep's
    parent is a user's error: one line, exit status 1."""
    import mlflow
    from omegaconf import OmegaConf

    from pipeline.tracking.store import connect_default

    defaults = OmegaConf.load(CONF / "config.yaml").compare
    parser = argparse.ArgumentParser(prog="python -m pipeline.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("parent", help="the sweep's parent run id (the sweep prints it when it starts)")
    parser.add_argument("--out", type=Path, default=Path("comparison"), help="folder to write the comparison to")
    parser.add_argument("--metric", default=defaults.metric, help=f"picks the best variant (default {defaults.metric})")
    parser.add_argument("--test-set", default=defaults.test_set, help="the metric's test set (default: the first)")
    parser.add_argument("--alpha", type=float, default=defaults.alpha, help=f"test level (default {defaults.alpha})")
    args = parser.parse_args(argv)
    connect_default()
    client = mlflow.MlflowClient()
    try:
        runs = sweep_runs(client, args.parent)
    except MlflowException as err:
        raise UserError(f"run {args.parent}: {str(err).splitlines()[0]} — pass a sweep's parent run id") from err
    test_sets = test_sets_of(runs, [args.test_set] if args.test_set else [])
    if not test_sets:
        raise UserError(f"run {args.parent} has no evaluated child runs to compare")
    cfg = {"metric": args.metric, "test_set": args.test_set, "alpha": args.alpha}
    ensembles = logged_ensembles(client, args.parent)  # the sweep's end averaged its runs: their row again
    comparison = write_comparison(client, args.parent, cfg, test_sets, args.out, ensembles)
    print(to_markdown(comparison))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
