"""Settings read from the environment as an operator writes them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lineagehub.settings import Settings


@pytest.mark.parametrize(
    ("given", "level"), [("warning", "WARNING"), ("Debug", "DEBUG"), ("ERROR", "ERROR")]
)
def test_log_level_in_any_case(monkeypatch: pytest.MonkeyPatch, given: str, level: str) -> None:
    monkeypatch.setenv("LINEAGEHUB_LOG_LEVEL", given)
    assert Settings(_env_file=None).log_level == level  # type: ignore[call-arg]


def test_log_format_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEAGEHUB_LOG_FORMAT", "TEXT")
    assert Settings(_env_file=None).log_format == "text"  # type: ignore[call-arg]


def test_an_unknown_log_level_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LINEAGEHUB_LOG_LEVEL", "chatty")
    with pytest.raises(ValidationError, match="log_level"):
        Settings(_env_file=None)  # type: ignore[call-arg]
