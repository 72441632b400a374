"""The tool that averages finished runs' probabilities and writes their label audit: the review queue per test set
(the label_issues stage's, on the averaged probabilities), its counts and the ensemble's scores beside the runs' own.

`python -m pipeline.ensemble RUN_ID [RUN_ID ...] [--out folder] [--review N]`: several finished runs, or one sweep's
parent run (its finished children, and the files logged to it under ensemble/, as the sweep's end does). Writes into
--out (default ensemble/): <test set>.csv and .pdf, label_issues.json, ensemble.json. Runs that did not evaluate the
same test set with the same class names are refused in one line, and nothing is written. One run alone gives its
own queue again (with another --review, say).
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Sequence
from pathlib import Path

from mlflow.exceptions import MlflowException

from pipeline.core.errors import UserError, reports_user_errors
from pipeline.core.paths import CONF
from pipeline.sweeps.ensemble import AuditSettings, ensemble_of, write_ensemble
from pipeline.sweeps.results import sweep_runs


@reports_user_errors
def main(argv: Sequence[str] | None = None) -> int:
    import mlflow
    from omegaconf import OmegaConf

    from pipeline.tracking.store import connect_default

    defaults = OmegaConf.load(CONF / "config.yaml")
    parser = argparse.ArgumentParser(prog="python -m pipeline.ensemble", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="finished runs' ids, or a sweep's parent run id")
    parser.add_argument("--out", type=Path, default=Path("ensemble"), help="folder to write to (default ensemble/)")
    li = defaults.label_issues
    parser.add_argument("--review", type=int, default=li.review, help=f"each queue's length (default {li.review})")
    args = parser.parse_args(argv)
    if args.review < 0:
        raise UserError(f"--review {args.review}: give 0 (cleanlab's flagged images alone) or more")
    connect_default()
    client = mlflow.MlflowClient()
    try:
        children = sweep_runs(client, args.runs[0]) if len(args.runs) == 1 else []
        run_ids = [r.run_id for r in children if r.status == "FINISHED"] if children else args.runs
        first = client.get_run(run_ids[0])
    except MlflowException as err:
        raise UserError(f"{str(err).splitlines()[0]} — pass finished runs' ids or a sweep's parent run id") from err
    prepared = first.data.params.get("paths.prepared", defaults.paths.prepared)
    settings = AuditSettings(prepared, args.review, li.max_shown, li.per_page)
    preferred = ast.literal_eval(first.data.params.get("data.test_sets", "[]"))  # its order: MNIST first
    e = ensemble_of(client, run_ids, preferred, settings)  # everything checked first
    parent = args.runs[0] if children else None
    for line in write_ensemble(e, args.out, settings, client, parent):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
