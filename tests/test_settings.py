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


def test_webhook_networks_are_comma_separated_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEAGEHUB_WEBHOOK_DENY_NETWORKS", "169.254.0.0/16, 10.1.0.0/16")
    from lineagehub.graph.webhooks import Reach

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    reach = Reach.of(settings.webhook_deny_networks, settings.webhook_allow_private)
    assert reach.refusal("10.1.2.3") is not None and reach.refusal("10.2.0.1") is None
    monkeypatch.setenv("LINEAGEHUB_WEBHOOK_DENY_NETWORKS", "169.254.0.0/16,not-a-network")
    with pytest.raises(ValidationError, match="webhook_deny_networks"):
        Settings(_env_file=None)  # type: ignore[call-arg]
