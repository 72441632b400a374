from __future__ import annotations

import signal

import pytest

from pipeline.core import interrupt


@pytest.fixture
def default_handlers():
    """The handlers as they were, after a test that sets its own (raise_on_signals, job_stops_on_signals)."""
    saved = {s: signal.getsignal(s) for s in interrupt.SIGNALS}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)
