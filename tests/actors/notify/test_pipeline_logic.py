"""Pure stages: classification, retry schedule, circuit breaker, token bucket, codec."""

from __future__ import annotations

import random

import httpx
import pytest

from actors.models import AlertStatus
from actors.notify.breaker import BreakerState, CircuitBreaker
from actors.notify.codec import decode_notification, encode_notification, rfc3339
from actors.notify.errors import PayloadError
from actors.notify.outcome import (
    Delivered,
    Permanent,
    Retry,
    body_reason,
    classify_http,
    classify_smtp_code,
    parse_retry_after,
)
from actors.notify.ratelimit import TokenBucket
from actors.notify.retry import RetryPolicy, backoff_delay, next_attempt_at
from tests.actors.notify.factories import make_alert, make_notification

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (200, {}, b"ok", Delivered("HTTP 200")),
        (202, {}, b"", Delivered("HTTP 202")),
        (500, {}, b"boom", Retry("HTTP 500: boom")),
        (503, {"Retry-After": "7"}, b"", Retry("HTTP 503", 7.0)),
        (429, {"retry-after": "2.5"}, b"", Retry("HTTP 429", 2.5)),
        (429, {}, b"", Retry("HTTP 429")),
        (408, {}, b"", Retry("HTTP 408")),
        (
            400,
            {},
            b'{"message":"Event object is invalid","errors":["x"]}',
            Permanent("HTTP 400: Event object is invalid; x"),
        ),
        (404, {}, b"no_service", Permanent("HTTP 404: no_service")),
        (301, {}, b"", Permanent("HTTP 301 (redirect not followed: configure the final URL)")),
    ],
)
def test_classify_http(status: int, headers: dict[str, str], body: bytes, expected: object) -> None:
    assert classify_http(status, httpx.Headers(headers), body, now=NOW) == expected


def test_classify_http_with_custom_ok_set() -> None:
    outcome = classify_http(201, httpx.Headers(), b"", now=NOW, ok={200})
    assert isinstance(outcome, Retry)
    assert "unexpected" in outcome.reason


def test_retry_after_forms() -> None:
    assert parse_retry_after(None, now=NOW) is None
    assert parse_retry_after("", now=NOW) is None
    assert parse_retry_after("soon", now=NOW) is None
    assert parse_retry_after("-3", now=NOW) is None  # not delta-seconds: garbage
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", now=NOW + 20) == pytest.approx(10)
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:50", now=NOW) is None  # no zone given


def test_body_reason_is_short_and_printable() -> None:
    assert body_reason(b"a\n  b\x00") == "a b\x00"
    assert len(body_reason("x" * 1000)) == 300
    assert body_reason(b"\xff\xfe") != ""


@pytest.mark.parametrize(
    ("code", "kind"),
    [(250, Delivered), (421, Retry), (451, Retry), (550, Permanent), (0, Permanent)],
)
def test_classify_smtp(code: int, kind: type) -> None:
    assert isinstance(classify_smtp_code(code, b"text"), kind)


def test_backoff_grows_with_jitter_and_caps() -> None:
    policy = RetryPolicy(initial=1, maximum=60, jitter=0.2)
    rng = random.Random(1)
    delays = [backoff_delay(policy, n, rng) for n in range(1, 12)]
    assert 0.8 <= delays[0] <= 1.2
    assert 1.6 <= delays[1] <= 2.4
    assert all(48 <= d <= 72 for d in delays[7:])
    assert backoff_delay(policy, 10_000, rng) <= 72
    no_jitter = RetryPolicy(initial=1, maximum=60, jitter=0)
    assert [backoff_delay(no_jitter, n, rng) for n in (1, 2, 3)] == [1, 2, 4]


def test_retry_policy_validates() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(initial=0)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.5)


def test_next_attempt_honours_retry_after_and_gives_up() -> None:
    policy = RetryPolicy(initial=1, maximum=10, jitter=0, give_up_after=100)
    rng = random.Random(0)
    at = next_attempt_at(policy, Retry("x", 30), attempts=1, created_at=NOW, now=NOW, rng=rng)
    assert at == NOW + 30
    at = next_attempt_at(policy, Retry("x"), attempts=3, created_at=NOW, now=NOW + 5, rng=rng)
    assert at == NOW + 9
    assert (
        next_attempt_at(policy, Retry("x"), attempts=9, created_at=NOW, now=NOW + 95, rng=rng)
        is None
    )


def _state(b: CircuitBreaker) -> BreakerState:
    return b.state


def test_breaker_opens_probes_and_closes() -> None:
    b = CircuitBreaker(failure_threshold=3, reset_timeout=10)
    assert b.allow(0)
    assert _state(b) is BreakerState.CLOSED
    b.record_failure(1)
    b.record_failure(2)
    assert _state(b) is BreakerState.CLOSED
    b.record_failure(3)
    assert _state(b) is BreakerState.OPEN
    assert not b.allow(12.9)
    assert b.retry_at() == 13
    assert b.allow(13)
    assert _state(b) is BreakerState.HALF_OPEN
    b.record_failure(13.5)  # the probe fails: open again, timer restarts
    assert _state(b) is BreakerState.OPEN
    assert b.retry_at() == 23.5
    assert b.allow(24)
    b.record_success()
    assert _state(b) is BreakerState.CLOSED
    assert b.failures == 0
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)


def test_success_resets_consecutive_count() -> None:
    b = CircuitBreaker(failure_threshold=2, reset_timeout=1)
    b.record_failure(0)
    b.record_success()
    b.record_failure(1)
    assert _state(b) is BreakerState.CLOSED


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=2, burst=2, now=0)
    assert bucket.take(0) == 0
    assert bucket.take(0) == 0
    assert bucket.take(0) == pytest.approx(0.5)
    assert bucket.take(0.25) == pytest.approx(0.25)
    assert bucket.take(0.5) == 0
    assert bucket.take(100) == 0  # refills up to burst only
    assert bucket.take(100) == 0
    assert bucket.take(100) > 0
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1)


def test_codec_round_trip() -> None:
    resolved = make_alert(fingerprint="fp2", status=AlertStatus.RESOLVED, ends_at=NOW + 5)
    n = make_notification(alerts=[make_alert(), resolved])
    assert decode_notification(encode_notification(n)) == n


@pytest.mark.parametrize("payload", ["", "[]", '{"key": "k"}', '{"alerts": 3}'])
def test_codec_rejects_bad_payload(payload: str) -> None:
    with pytest.raises(PayloadError, match="bad outbox payload"):
        decode_notification(payload, key="k")


def test_rfc3339() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(NOW + 0.5) == "2023-11-14T22:13:20.500Z"
