"""Trust for outgoing HTTPS: the system store plus `CA_BUNDLE` (one setting for every client)."""

from __future__ import annotations

import functools
import os
import ssl
import tempfile

import certifi


@functools.lru_cache(maxsize=8)
def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """An SSL context trusting certifi's roots, the system store and the extra CA, if any."""
    context = ssl.create_default_context(cafile=certifi.where())
    context.load_default_certs()
    if ca_bundle:
        context.load_verify_locations(cafile=ca_bundle)
    return context


@functools.lru_cache(maxsize=8)
def ca_file(ca_bundle: str | None) -> str:
    """A PEM file for libraries that want a path (requests/msal): certifi's roots + the extra CA."""
    if not ca_bundle:
        return certifi.where()
    with open(certifi.where(), "rb") as roots, open(ca_bundle, "rb") as extra:
        combined = roots.read() + b"\n" + extra.read()
    handle, path = tempfile.mkstemp(prefix="connect-dynamics-ca-", suffix=".pem")
    with os.fdopen(handle, "wb") as out:
        out.write(combined)
    return path
