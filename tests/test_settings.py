"""Settings read from the environment: MINPRUNE_FAST."""

import pytest

from minprune.base.settings import fast_mode


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "Yes"])
def test_fast_mode_on(monkeypatch, value):
    monkeypatch.setenv("MINPRUNE_FAST", value)
    assert fast_mode() is True


@pytest.mark.parametrize("value", [None, "", "0"])
def test_fast_mode_off(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("MINPRUNE_FAST", raising=False)
    else:
        monkeypatch.setenv("MINPRUNE_FAST", value)
    assert fast_mode() is False


@pytest.mark.parametrize("value", ["2", "on", "no", "false"])
def test_fast_mode_refuses_anything_else_naming_the_variable_and_value(monkeypatch, value):
    monkeypatch.setenv("MINPRUNE_FAST", value)
    with pytest.raises(ValueError, match=f"MINPRUNE_FAST='{value}': expected one of"):
        fast_mode()
