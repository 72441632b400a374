"""How every stage and tool ends on an error, with one exit-status convention (docs/operations.md has the table):

- 0: done;
- 1 (`USER_ERROR`): a mistake the user can fix — one line `error: <what, and what to do>` on stderr, nothing
  destroyed; and what else did not finish: a bug (with its traceback), a sweep with failed runs, predict with an
  image it could not classify (one line per image);
- 2: a malformed command line, which argparse (and Hydra's own parser) reports; our code never exits 2;
- 128 + the signal's number: interrupted (pipeline/core/interrupt.py).

A user's mistake is a bad setting or argument, a missing or malformed data file, a model or run that cannot be used:
an exception our code raises with a message that names the thing and the fix (a `UserError`, or a subclass), or a
missing file, whoever noticed it; and a tracking server's refusal of the login (a 403, whose message says whose
the run or model is: pipeline/tracking/team_app.py). Entrypoints raise it and never print it themselves:
`reports_user_errors` prints it. HYDRA_FULL_ERROR=1 shows the traceback of those too.
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
REFUSED = "PERMISSION_DENIED"  # the error code of MLflow's 403 (RestException.error_code)


def refusal(err: BaseException) -> str | None:
    """Why the tracking server refused the login, when `err` is its 403, or None. MLflow's API calls raise a
    RestException that carries the code; its artifact uploads, requests' HTTPError with the server's answer. Read
    by their attributes, so that every stage need not import MLflow to be told."""
    if getattr(err, "error_code", None) == REFUSED:
        return str(err).removeprefix(f"{REFUSED}: ")
    response = getattr(err, "response", None)
    if getattr(response, "status_code", None) != 403:
        return None
    try:
        return str(response.json()["message"])
    except (ValueError, KeyError, TypeError):  # not MLflow's JSON: its text, if any
        return response.text.strip() or "403 Forbidden"


def is_user_error(err: BaseException) -> bool:
    """A mistake the user can fix: ours (USER_ERRORS), or a login the tracking server refused."""
    return isinstance(err, USER_ERRORS) or refusal(err) is not None


def user_message(err: BaseException) -> str:
    """What a user's mistake says: a server's refusal by its own reason."""
    reason = refusal(err)
    return str(err) if reason is None else f"the tracking server refused: {reason}"


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
        except Exception as err:
            if not is_user_error(err) or os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            exit_on_user_error(user_message(err))

    return run


def failure_report(err: BaseException) -> str:
    """How a sweep reports a job that failed while the others go on: a user's mistake by its message alone, as
    `reports_user_errors` would (five folds of one stale file are five lines, not five tracebacks); anything else
    with its traceback, which is a bug's report."""
    if is_user_error(err):
        return f" {user_message(err)}"
    return "\n" + "".join(traceback.format_exception(err))


def first_line(err: BaseException, limit: int = 120) -> str:
    """The gist of an exception's message, for a tag or a one-line error: Keras's run to several long lines."""
    lines = str(err).strip().splitlines()
    line = lines[0] if lines else type(err).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"
