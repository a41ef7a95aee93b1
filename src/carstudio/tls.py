"""One TLS context for every outgoing HTTPS client Car Studio opens.

Loading the certificate authorities costs about 20 ms of CPU each time; a context is safe to
share between clients and threads, so it is built once, on first use.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The verifying context httpx would build by default (certifi's authorities)."""
    return httpx.create_ssl_context()
