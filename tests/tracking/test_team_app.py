"""The team server's rules, their pure part: whose an artifact path is. (The rules on a real server, every action by
every role: tests/system/test_team_server.py.)"""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException

from pipeline.tracking.team_app import MAINTAINER_ROUTES, RUN_ROUTES, artifact_owner

RUN = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("path", "owner"),
    [
        (f"1/{RUN}/artifacts/reports/summary.pdf", ("run", RUN)),
        (f"1/{RUN}/artifacts", ("run", RUN)),
        ("3/models/m-0123abcd/artifacts/model.keras", ("model", "m-0123abcd")),  # what models:/…@champion serves
        (f"1/./{RUN}/artifacts/x", ("run", RUN)),  # the same folder as 1/<run>/…
        (f"1/%2e/{RUN}//artifacts/x", ("run", RUN)),  # decoded as MLflow's handler decodes it
        ("1/notes.txt", None),  # the experiment's own: MLflow's permissions alone
        ("1/not-a-run/artifacts/x", None),
        ("", None),
    ],
)
def test_whose_an_artifact_is(path, owner):
    assert artifact_owner(path) == owner


def test_the_rules_reach_both_of_mlflows_api_paths():
    assert ("/api/2.0/mlflow/runs/update", "POST") in RUN_ROUTES
    assert ("/ajax-api/2.0/mlflow/runs/log-metric", "POST") in RUN_ROUTES  # the UI's
    assert ("/api/2.0/mlflow/registered-models/alias", "POST") in MAINTAINER_ROUTES
    assert ("/ajax-api/2.0/mlflow/registered-models/rename", "POST") in MAINTAINER_ROUTES


def test_a_path_out_of_the_store_is_refused():
    with pytest.raises(MlflowException, match="Invalid path"):
        artifact_owner(f"1/x/../{RUN}/artifacts/x")
