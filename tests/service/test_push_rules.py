"""The push building blocks without a server: signatures, quiet hours across time zones and
DST, Retry-After, the tpp horizon, and the settings that guard them."""

from __future__ import annotations

from datetime import UTC, datetime, time
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import pytest
import standardwebhooks
from push_helpers import SECRET
from pydantic import SecretStr

from pasrec.model.predictor import NextTime
from pasrec.service.push import policy, signing
from pasrec.service.push.delivery import parse_retry_after
from pasrec.service.settings import Settings, signing_key


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)


def test_signature_matches_the_standard_webhooks_library() -> None:
    body = b'{"type":"recommendations.push","data":{"push_id":"p1"}}'
    stamp = int(datetime.now(UTC).timestamp())
    headers = signing.headers(signing_key(SecretStr(SECRET)), "p1", stamp, body)
    library = standardwebhooks.Webhook(SECRET)
    assert (
        library.sign("p1", datetime.fromtimestamp(stamp, UTC), body.decode())
        == headers["webhook-signature"]
    )
    assert library.verify(body, headers)["data"]["push_id"] == "p1"


@pytest.mark.parametrize(
    ("utc", "zone", "expected"),
    [
        # 23:30 in Paris (winter, UTC+1): held to 08:00 the next morning.
        ("2025-01-10T22:30:00+00:00", "Europe/Paris", "2025-01-11T07:00:00+00:00"),
        # 03:00 in Paris (summer, UTC+2): held to 08:00 the same day.
        ("2025-07-10T01:00:00+00:00", "Europe/Paris", "2025-07-10T06:00:00+00:00"),
        # The night the clocks go forward (30 March 2025): 08:00 is UTC+2 already.
        ("2025-03-30T00:30:00+00:00", "Europe/Paris", "2025-03-30T06:00:00+00:00"),
        # Noon in Paris: not quiet.
        ("2025-01-10T11:00:00+00:00", "Europe/Paris", None),
        # 22:00 UTC is 07:00 in Tokyo: quiet for another hour.
        ("2025-01-10T22:00:00+00:00", "Asia/Tokyo", "2025-01-10T23:00:00+00:00"),
    ],
)
def test_quiet_hours_end_in_the_users_zone(utc: str, zone: str, expected: str | None) -> None:
    settings = _settings(push_quiet_start=time(22), push_quiet_end=time(8))
    held = policy.quiet_until(settings, datetime.fromisoformat(utc), ZoneInfo(zone))
    assert held == (None if expected is None else datetime.fromisoformat(expected))


def test_daytime_quiet_window_and_unknown_zone() -> None:
    settings = _settings(push_quiet_start=time(12), push_quiet_end=time(14))
    noon = datetime(2025, 1, 10, 13, tzinfo=UTC)
    assert policy.quiet_until(settings, noon, ZoneInfo("UTC")) == datetime(
        2025, 1, 10, 14, tzinfo=UTC
    )
    assert policy.user_zone(settings, "Mars/Olympus") == ZoneInfo("UTC")


def test_retry_after_as_seconds_or_http_date() -> None:
    now = datetime(2025, 1, 10, 12, tzinfo=UTC)
    assert parse_retry_after("120", now.timestamp()) == 120.0
    date = format_datetime(datetime(2025, 1, 10, 12, 1, 30, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(date, now.timestamp()) == 90.0
    assert parse_retry_after("soon", now.timestamp()) is None
    assert parse_retry_after(None, now.timestamp()) is None


def test_return_probability_at_the_nearest_tpp_horizon() -> None:
    toi = NextTime(0.0, None, {1.0: 0.2, 7.0: 0.5, 30.0: 0.9})
    assert policy.return_probability(toi, 86400.0) == 0.2
    assert policy.return_probability(toi, 3 * 86400.0) == 0.5
    assert policy.return_probability(toi, 90 * 86400.0) == 0.9
    assert policy.return_probability(NextTime(0.0), 86400.0) is None


def test_the_timely_probability_gate_skips_only_pushes_the_model_doubts() -> None:
    settings = _settings(push_min_timely_probability=0.3)
    now = datetime(2025, 1, 10, tzinfo=UTC)
    due = now.timestamp() + 86400.0
    doubtful = policy.plan(settings, now, now, NextTime(due, p_timely=0.2))
    assert doubtful.skip == policy.LOW_TIMELY_PROBABILITY
    assert policy.plan(settings, now, now, NextTime(due, p_timely=0.3)).skip is None
    # Other strategies give no such probability; the fallback has no prediction at all.
    assert policy.plan(settings, now, now, NextTime(due)).skip is None
    assert policy.plan(settings, now, now, None).skip is None
    assert policy.plan(_settings(), now, now, NextTime(due, p_timely=0.01)).skip is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"push_min_timely_probability": 1.5}, "less than or equal to 1"),
        ({"push_webhook_url": "http://h"}, "needs push_webhook_secret"),
        ({"push_webhook_secret": "hunter2-hunter2"}, "whsec_"),
        ({"push_webhook_secret": "whsec_!!!"}, "not base64"),
        ({"push_webhook_secret": "whsec_c2hvcnQ="}, "24 to 64 bytes"),
        ({"push_lease_s": 5, "push_webhook_timeout_s": 10}, "must exceed"),
        ({"push_quiet_start": "22:00", "push_quiet_end": None}, "both"),
        ({"default_timezone": "Mars/Olympus"}, "unknown IANA time zone"),
    ],
)
def test_bad_push_settings_are_refused(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        _settings(**values)
    secret = values.get("push_webhook_secret")
    assert not isinstance(secret, str) or secret not in str(error.value)  # never echoed
