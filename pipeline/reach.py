"""Is the far end there? A tracking server, asked within seconds, before any work.

MLflow's client retries an absent server for minutes, and by then a training may be done with nowhere to go. A
short question first turns that into one line naming the URL and what to check. Only a missing far end is refused
here: a server that answers at all (even 401 or 404) is there, and its answers are its client's business.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request

from pipeline.errors import first_line

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
