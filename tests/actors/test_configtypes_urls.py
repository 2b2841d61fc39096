"""`check_http_url`: the one URL validation checks and channels share."""

from __future__ import annotations

import pytest

from actors.checks.http import HttpCheckConfig
from actors.configtypes import check_http_url
from actors.notify.channels.alertmanager import AlertmanagerChannelConfig


@pytest.mark.parametrize(
    "url", ["http://example.com", "https://h:8443/p?q=1", "http://u:p@127.0.0.1:1/x"]
)
def test_http_urls_with_a_host_and_a_valid_port_pass(url: str) -> None:
    check_http_url(url, shown=url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com", "expected an http:// or https:// URL, got 'ftp://example.com'"),
        ("http:///path", "expected an http:// or https:// URL, got 'http:///path'"),
        ("http://h:0", "invalid port in 'http://h:0'; expected 1-65535"),
        ("http://h:99999", "invalid port in 'http://h:99999'; expected 1-65535"),
    ],
)
def test_a_bad_url_is_named_in_the_message(url: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_http_url(url, shown=url)
    assert str(caught.value) == message


@pytest.mark.parametrize("url", ["token-abc", "http://h:99999/token-abc"])
def test_a_secret_url_is_never_echoed(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_http_url(url, shown=None)
    assert "token-abc" not in str(caught.value)


def test_a_check_and_a_channel_reject_the_same_url_with_the_same_words() -> None:
    with pytest.raises(ValueError) as check:
        HttpCheckConfig.model_validate({"name": "x", "kind": "http", "url": "http://h:0"})
    with pytest.raises(ValueError) as channel:
        AlertmanagerChannelConfig.model_validate({"kind": "alertmanager", "url": "http://h:0"})
    words = "invalid port in 'http://h:0'; expected 1-65535"
    assert words in str(check.value)
    assert words in str(channel.value)
