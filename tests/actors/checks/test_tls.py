"""One TLS client context per verification mode for the whole process."""

from __future__ import annotations

import ssl

from actors.checks.tls import client_context


def test_every_check_shares_one_context_per_mode() -> None:
    verifying = client_context()
    assert client_context() is verifying
    assert verifying.verify_mode is ssl.CERT_REQUIRED
    assert verifying.check_hostname
    lax = client_context(verify=False)
    assert client_context(verify=False) is lax
    assert lax is not verifying
    assert lax.verify_mode is ssl.CERT_NONE
    assert not lax.check_hostname
