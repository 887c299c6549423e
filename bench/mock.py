"""The mock upstream: nginx answering with a fixed chat completion and a fixed SSE stream."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).with_name("nginx.conf.tmpl")
CONTENT = "The report covers three quarters. Revenue grew twelve percent; costs stayed flat."
CREATED = 1_700_000_000


def completion() -> dict[str, object]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": CREATED,
        "model": "mock",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": CONTENT},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 24, "completion_tokens": 16, "total_tokens": 40},
    }


def stream_chunk(delta: dict[str, str], finish_reason: str | None) -> dict[str, object]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "mock",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def stream_body() -> str:
    """A few SSE events: the role, the content in three pieces, the finish, then [DONE]."""
    words = CONTENT.split(" ")
    cuts = [0, len(words) // 3, 2 * len(words) // 3, len(words)]
    pieces = [" ".join(words[a:b]) + " " for a, b in itertools.pairwise(cuts)]
    pieces[-1] = pieces[-1].rstrip()
    chunks = [stream_chunk({"role": "assistant", "content": ""}, None)]
    chunks += [stream_chunk({"content": piece}, None) for piece in pieces]
    chunks.append(stream_chunk({}, "stop"))
    events = [f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n" for chunk in chunks]
    return "".join(events) + "data: [DONE]\n\n"


def nginx_quoted(text: str) -> str:
    """Escape text for a single-quoted nginx string (newlines may stay literal)."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def render_config(prefix: Path, port: int) -> Path:
    body = json.dumps(completion(), separators=(",", ":"))
    text = Template(TEMPLATE.read_text()).substitute(
        prefix=str(prefix),
        port=port,
        completion=nginx_quoted(body),
        stream=nginx_quoted(stream_body()),
    )
    path = prefix / "nginx.conf"
    path.write_text(text)
    return path


def command(prefix: Path, config: Path) -> list[str]:
    return ["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(config)]
