"""Write params.yaml as DVC's Hydra integration does: `conf/` composed, with optional overrides.

`python -m pipeline.compose [override ...]`; the test suite fails when params.yaml and conf/ disagree. An override
Hydra refuses is a user's error, as in every tool: `error: ` and Hydra's message, exit status 1, params.yaml as it
was.
"""

from __future__ import annotations

import sys

from pipeline.config.params import composed_params
from pipeline.core.errors import reports_user_errors
from pipeline.core.paths import CONF, ROOT


@reports_user_errors
def main(argv: list[str]) -> None:
    (ROOT / "params.yaml").write_text(composed_params(CONF, argv), encoding="utf-8")
    print(f"wrote {ROOT / 'params.yaml'}" + (f" with {' '.join(argv)}" if argv else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
