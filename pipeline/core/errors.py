"""How every stage and tool ends on an error, with one exit-status convention (docs/operations.md has the table):

- 0: done;
- 1 (`USER_ERROR`): a mistake the user can fix — one line `error: <what, and what to do>` on stderr, nothing
  destroyed; and what else did not finish: a bug (with its traceback), a sweep with failed runs, predict with an
  image it could not classify (one line per image);
- 2: a malformed command line, which argparse (and Hydra's own parser) reports; our code never exits 2;
- 128 + the signal's number: interrupted (pipeline/core/interrupt.py).

A user's mistake is a bad setting or argument, a missing or malformed data file, a model or run that cannot be used:
an exception our code raises with a message that names the thing and the fix (a `UserError`, or a subclass), or a
missing file, whoever noticed it. Entrypoints raise it and never print it themselves: `reports_user_errors` prints
it. HYDRA_FULL_ERROR=1 shows the traceback of those too.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn, TypeVar

T = TypeVar("T")


class UserError(Exception):
    """Something the user can fix: a setting, a missing or malformed data file. The message says what and how."""


USER_ERRORS = (UserError, FileNotFoundError)
USER_ERROR = 1  # the exit status of a user's mistake (2 is argparse's: a malformed command line)


def printable(text: object) -> str:
    """`text` with every character that does not print escaped as in Python (a newline as `\\n`, ESC as `\\x1b`, a
    byte that is not UTF-8 as `\\udcff`): a file name or an id shown in a table or a message cannot forge a line of
    it, or move a terminal's cursor."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))


def exit_on_user_error(message: str) -> NoReturn:
    """End the process as a user's mistake does: `error: <message>` on stderr, one line whatever names it quotes,
    exit status USER_ERROR. For what cannot raise to `reports_user_errors` (a Hydra callback, whose exceptions
    Hydra turns into warnings)."""
    print(f"error: {printable(message)}", file=sys.stderr, flush=True)
    raise SystemExit(USER_ERROR) from None  # the message is all: no traceback, not even as a context


def reports_user_errors(main: Callable[..., T]) -> Callable[..., T]:
    """For every entrypoint's `main` — a stage's, under `@hydra_main`, and a tool's: a user's mistake is printed as
    `error: <message>` on stderr and the process exits with status 1, without a traceback (nor Hydra's "Error
    executing job").

    The error is caught here, outside the stage function, so that a stage's MLflow run has already been marked
    FAILED by its `with` block when the message is printed."""

    @functools.wraps(main)
    def run(*args, **kwargs) -> T:
        try:
            return main(*args, **kwargs)
        except USER_ERRORS as err:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            exit_on_user_error(str(err))

    return run


def failure_report(err: BaseException) -> str:
    """How a sweep reports a job that failed while the others go on: a user's mistake by its message alone, as
    `reports_user_errors` would (five folds of one stale file are five lines, not five tracebacks); anything else
    with its traceback, which is a bug's report."""
    if isinstance(err, USER_ERRORS):
        return f" {err}"
    return "\n" + "".join(traceback.format_exception(err))


def first_line(err: BaseException, limit: int = 120) -> str:
    """The gist of an exception's message, for a tag or a one-line error: Keras's run to several long lines."""
    lines = str(err).strip().splitlines()
    line = lines[0] if lines else type(err).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"
