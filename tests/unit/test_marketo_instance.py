"""The Marketo instance's identity: its Munchkin id, else its normalised base URL."""

import pytest

from bot.marketo.instance import instance_id


@pytest.mark.parametrize(("base_url", "expected"), [
    ("https://123-ABC-456.mktorest.com", "123-ABC-456"),
    ("https://123-abc-456.MKTOREST.com/", "123-ABC-456"),
    (" https://123-ABC-456.mktorest.com/rest ", "123-ABC-456"),
    ("HTTPS://Marketo.Example.COM/", "https://marketo.example.com"),
    ("https://127.0.0.1:8443/", "https://127.0.0.1:8443"),
    ("https://localhost:8443/base/", "https://localhost:8443/base"),
    ("https://123-ABCD-456.mktorest.com", "https://123-abcd-456.mktorest.com"),
])
def test_instance_id(base_url: str, expected: str) -> None:
    assert instance_id(base_url) == expected
