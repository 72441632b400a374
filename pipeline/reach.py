"""Is the DVC remote there? `python -m pipeline.reach` asks the repository's default DVC remote within seconds, and
exits 1 with one line naming it and what to check when it does not answer (`make push` and `make pull` ask first).

What counts as there, and why asking first: pipeline/tracking/reach.py.
"""

from __future__ import annotations

import sys

from pipeline.core.errors import UserError, reports_user_errors
from pipeline.tracking.reach import remote_problem


@reports_user_errors
def main() -> int:
    problem = remote_problem()
    if problem:
        raise UserError(problem)
    return 0


if __name__ == "__main__":
    sys.exit(main())
