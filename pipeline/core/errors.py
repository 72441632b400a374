"""How a stage ends on an error: a mistake the user can fix ends it with its message alone, exit status 1; any
other exception is a bug and keeps its traceback (Hydra's, as before).

A user's mistake is a bad setting, a missing data file, or a malformed one: an exception our code raises with a
message that names the thing and the fix (a `UserError`), or a missing file, whoever noticed it. HYDRA_FULL_ERROR=1
shows the traceback of those too.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class UserError(Exception):
    """Something the user can fix: a setting, a missing or malformed data file. The message says what and how."""


USER_ERRORS = (UserError, FileNotFoundError)


def reports_user_errors(main: Callable[..., T]) -> Callable[..., T]:
    """For an entrypoint's `main`, under `@hydra.main`: a user's mistake is printed as `error: <message>` on stderr
    and the process exits with status 1, without Hydra's "Error executing job" and traceback.

    The error is caught here, outside the stage function, so that a stage's MLflow run has already been marked
    FAILED by its `with` block when the message is printed."""

    @functools.wraps(main)
    def run(*args, **kwargs) -> T:
        try:
            return main(*args, **kwargs)
        except USER_ERRORS as err:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None

    return run


def first_line(err: BaseException, limit: int = 120) -> str:
    """The gist of an exception's message, for a tag or a one-line error: Keras's run to several long lines."""
    lines = str(err).strip().splitlines()
    line = lines[0] if lines else type(err).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"
