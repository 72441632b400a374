"""Give a training run's registered model an alias: `python -m pipeline.promote RUN_ID [--alias champion]`.

Predict with and serve it as `models:/handwriting-mnist@champion` (pipeline/tracking/registry.py); the alias
leaves the version that had it. The store is the project's (mlruns/mlflow.db) unless MLFLOW_TRACKING_URI names
another, as for every stage. A malformed run id, a run the store does not have, one without a registered model, one
that did not finish (KILLED, FAILED, RUNNING: unless --force, which says what it overrode), or an alias MLflow
refuses is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlflow.tracking import MlflowClient

from pipeline.core.errors import reports_user_errors
from pipeline.core.shutdown import skip_final_collection
from pipeline.tracking.registry import CHAMPION, FINISHED, promote, promotion_line
from pipeline.tracking.store import connect_default


@reports_user_errors
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.promote", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_id", metavar="RUN_ID", help="the training run (its id in `mlflow ui`, or models/run.json)")
    parser.add_argument("--alias", default=CHAMPION, help=f"the alias to give its model version (default {CHAMPION})")
    parser.add_argument(
        "--force",
        action="store_true",
        help="promote a run that did not finish (KILLED, FAILED, RUNNING: by default refused, as its model may be "
        "half-trained or unevaluated), and say so",
    )
    args = parser.parse_args(argv)
    connect_default()
    client = MlflowClient()
    version = promote(args.run_id, args.alias, client, force=args.force)
    run = client.get_run(args.run_id)
    if run.info.status != FINISHED:
        print(
            f"promote: run {args.run_id} is {run.info.status}, not {FINISHED}: promoted anyway, as --force asks",
            file=sys.stderr,
        )
    print(promotion_line(version, args.alias, run))
    return 0


if __name__ == "__main__":
    skip_final_collection()
    sys.exit(main())
