"""The chapters' checks (``chapters/checks``) and the chapters tool, importable from tests."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = ROOT / "chapters"
if str(CHAPTERS) not in sys.path:
    sys.path.insert(0, str(CHAPTERS))

_spec = importlib.util.spec_from_file_location("chapters_tool", ROOT / "tools" / "chapters.py")
chapters_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(chapters_tool)


@pytest.fixture(scope="session")
def tool():
    return chapters_tool


def _fails_with_hint(check, *args, **kwargs) -> str:
    """Run ``check`` on a wrong answer; it must raise AssertionError or NotImplementedError
    with a message a student can act on. Returns the message."""
    try:
        check(*args, **kwargs)
    except (AssertionError, NotImplementedError) as error:
        message = str(error)
        assert len(message) >= 20, f"the hint is too short to act on: {message!r}"
        return message
    raise AssertionError(f"{check.__module__}.{check.__name__} accepted a wrong answer")


@pytest.fixture
def fails_with_hint():
    """``fails_with_hint(check, *answer)``: the check must refuse the answer with a hint;
    returns the hint (a test may require it to name the mistake)."""
    return _fails_with_hint
