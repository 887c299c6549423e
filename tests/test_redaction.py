"""The provider key never reaches a client or a log: not whole, not in part, not in base64."""

from __future__ import annotations

import base64
import re

import openai
import pytest

from gateway.upstream.base import KEY_FRAGMENT, redact
from tests.conftest import UPSTREAM_KEY


def leaks(text: str, secret: str = UPSTREAM_KEY) -> list[str]:
    """What in `text` gives away KEY_FRAGMENT characters of the key in a row: plainly, or once
    a base64-looking token is decoded (at any of the four alignments)."""
    found = [secret[i : i + KEY_FRAGMENT] for i in range(len(secret) - KEY_FRAGMENT + 1)]
    # ("upstream", a run of the test key, is also a word the gateway's own messages use)
    found = [run for run in found if run in text and not run.isalpha()]
    key = secret.encode()
    for token in re.findall(r"[A-Za-z0-9+/_-]{8,}", text):
        for start in range(4):
            piece = token[start:].replace("-", "+").replace("_", "/")
            decoded = base64.b64decode(piece[: len(piece) // 4 * 4] or "", validate=False)
            if any(key[i : i + KEY_FRAGMENT - 2] in decoded for i in range(len(key) - 5)):
                found.append(token)
    return found


@pytest.mark.parametrize(
    "message",
    [
        f"Incorrect API key provided: {UPSTREAM_KEY}",
        f"key {UPSTREAM_KEY[5:17]} refused",
        base64.b64encode(f"user:{UPSTREAM_KEY}".encode()).decode(),
        base64.b64encode(f"Bearer {UPSTREAM_KEY}".encode()).decode(),
        base64.urlsafe_b64encode(UPSTREAM_KEY.encode()).decode(),
    ],
    ids=["whole", "part", "basic", "bearer-base64", "urlsafe"],
)
def test_no_run_of_the_key_survives_redaction(message: str) -> None:
    assert leaks(redact(message, UPSTREAM_KEY)) == []


def test_a_url_s_credentials_are_redacted_whatever_the_scheme() -> None:
    message = "Cannot connect to proxy http://floorgate:pr0xy-pass@10.0.0.9:3128 (refused)"
    assert redact(message) == ("Cannot connect to proxy http://[redacted]@10.0.0.9:3128 (refused)")


def test_text_without_the_key_is_left_alone() -> None:
    assert redact("The model is overloaded; try again.", UPSTREAM_KEY) == (
        "The model is overloaded; try again."
    )


@pytest.mark.parametrize("route", ["echo-key", "echo-key-litellm"])
def test_an_upstream_echoing_the_key_reaches_the_client_redacted(
    client: openai.OpenAI, route: str
) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(
            model=f"route/{route}", messages=[{"role": "user", "content": "hi"}]
        )
    body = info.value.response.text
    assert "refused" in body  # the message itself still gets through
    assert leaks(body) == []
