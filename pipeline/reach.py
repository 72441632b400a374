"""Is the DVC remote there? `python -m pipeline.reach` asks the repository's default DVC remote within seconds, and
exits 1 with one line naming it and what to check when it does not answer (`make push` and `make pull` ask first).

What counts as there, and why asking first: pipeline/tracking/reach.py.
"""

from __future__ import annotations

import sys

from pipeline.tracking.reach import remote_problem


def main() -> int:
    problem = remote_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
