"""Raw HTTP to a Marketo emulator, signed in as the tests' API client, for tests of the documented wire format."""

from __future__ import annotations

import httpx

from sandbox.marketo import MarketoEmulator

CLIENT_ID, CLIENT_SECRET = "cid", "csecret"


def signed_in(emulator: MarketoEmulator) -> httpx.Client:
    """A client of `emulator` carrying an access token (client credentials); the caller closes it."""
    http = httpx.Client(base_url=emulator.url)
    token = http.post("/identity/oauth/token", data={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                                     "client_secret": CLIENT_SECRET}).json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    return http
