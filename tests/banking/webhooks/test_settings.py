"""The webhooks section of the settings: back-off figures and a lease that outlasts an attempt."""

import pytest

from server import ConfigError, load_settings


def test_the_back_off_doubles_from_the_base_up_to_the_cap() -> None:
    settings = load_settings(environ={}).webhooks
    delays = [settings.retry_delay_s(attempt) for attempt in range(1, 11)]
    assert delays == [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600]


def test_a_lease_no_longer_than_an_attempt_stops_the_start() -> None:
    with pytest.raises(ConfigError, match=r"lease_s must be longer than webhooks\.timeout_s"):
        load_settings(
            environ={"BANKBOT_WEBHOOKS__LEASE_S": "5", "BANKBOT_WEBHOOKS__TIMEOUT_S": "5"}
        )


def test_an_unknown_key_stops_the_start() -> None:
    with pytest.raises(ConfigError, match="retries"):
        load_settings(environ={"BANKBOT_WEBHOOKS__RETRIES": "3"})
