"""Is the far end there? The MLflow tracking server and the DVC remote, asked within seconds, before any work.

Their own clients wait a long time for an absent server (MLflow retries for minutes; DVC waits as long as the
storage's library does), and by then a training may be done with nowhere to go. A short question first turns
that into one line naming the URL and what to check. Only a missing far end is refused here: a server that
answers at all (even 401 or 404) is there, and its answers are its client's business.

pipeline/tracking/store.py asks the tracking server; `python -m pipeline.reach` the repository's default DVC remote.
"""

from __future__ import annotations

import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from pipeline.core.errors import first_line

TIMEOUT = 5  # seconds: a server on the same network answers in milliseconds


def http_problem(url: str, timeout: float = TIMEOUT) -> str | None:
    """Why nothing answers an HTTP GET of `url` within `timeout` seconds; None when something does."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # an HTTP status is an answer
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, ssl.SSLError):
            return None  # it speaks TLS: there; certificates are the client's own settings
        if isinstance(reason, TimeoutError):
            return f"no answer within {timeout:g} s"
        if isinstance(reason, OSError) and reason.strerror:
            return reason.strerror  # "Connection refused", "Name or service not known"
        return first_line(reason) if isinstance(reason, BaseException) else str(reason)


def answered_within(ask: Callable[[], object], timeout: float = TIMEOUT) -> str | None:
    """Why `ask()` failed or did not return within `timeout` seconds; None when it returned. (A storage library's
    own timeouts can be minutes: the question runs in a thread that is left behind if it does not answer.)"""
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            ask()
        except Exception as err:  # noqa: BLE001 (any failure is the answer, handed to the caller)
            failure.append(err)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    if not done.wait(timeout):
        return f"no answer within {timeout:g} s"
    return f"{type(failure[0]).__name__}: {first_line(failure[0])}" if failure else None


def remote_problem(root: Path | None = None, timeout: float = TIMEOUT) -> str | None:
    """What keeps `dvc push` and `dvc pull` in the repository at `root` (default: the one around the current
    folder) from reaching its default DVC remote; None when it answers."""
    from dvc.exceptions import DvcException, NotDvcRepoError
    from dvc.repo import Repo

    try:
        repo = Repo(None if root is None else str(root))
    except NotDvcRepoError:
        return f"{Path(root or '.').resolve()} is not in a DVC repository: run this from the project's folder"
    with repo:
        name = repo.config["core"].get("remote")
        if not name:
            return "no default DVC remote: add one with `dvc remote add -d <name> <url>` (see docs/scaling.md)"
        url = repo.config["remote"].get(name, {}).get("url", "?")
        where = f"DVC remote {name!r} ({url})"
        fix = f"point it elsewhere with `dvc remote modify --local {name} url <url>`"
        try:
            remote = repo.cloud.get_remote(name)
        except (ImportError, DvcException) as err:  # e.g. s3:// without dvc-s3: DVC names the package to install
            return f"{where}: {first_line(err, limit=300)}"
    if remote.fs.protocol == "local":
        folder = Path(remote.path)
        if folder.is_dir() or folder.parent.is_dir():
            return None  # the first push makes the folder itself
        return f"{where}: neither it nor its parent folder exists — is the drive or share mounted? Or {fix}"
    if url.startswith(("http://", "https://")):
        problem = http_problem(url, timeout)  # DVC's HTTP file system takes a refused connection for a missing file
    else:
        problem = answered_within(lambda: remote.fs.exists(remote.path), timeout)
    if problem is None:
        return None
    return f"{where} not reachable: {problem} — check the URL, the network and your credentials, or {fix}"
