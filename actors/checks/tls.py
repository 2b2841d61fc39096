"""TLS client contexts shared by every check of the process.

A `ssl.SSLContext` holds its own copy of the system CA store (about 0.9 MB), so one per check
adds up: 200 https checks would hold 180 MB of identical certificates. A context is safe to share
between connections and tasks, so every check uses one of these two (built on first use).
"""

from __future__ import annotations

import functools
import ssl

__all__ = ["client_context"]


@functools.cache
def client_context(*, verify: bool = True) -> ssl.SSLContext:
    """The process' client context: the system CA store and hostname checks when `verify`,
    no verification at all otherwise (a check's `tls_verify = false`). Do not modify it."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
