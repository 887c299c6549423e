"""The LLM-shaped mock upstream: nginx whose echo module answers like a model that takes time.

`POST /llm/v1/chat/completions` streams: the first chunk after `ttft_ms`, then `chunks` content
chunks `chunk_ms` apart, the finish and `data: [DONE]`. `POST /slow/v1/chat/completions` answers
a whole completion after `whole_ms`. nginx sleeps on its timers, so one process holds thousands
of such answers at once for next to no CPU. Needs Debian's libnginx-mod-http-echo (nginx-light
depends on it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from string import Template

from bench.mock import completion, nginx_quoted, stream_chunk

TEMPLATE = Path(__file__).with_name("llm_nginx.conf.tmpl")
ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")
STREAM_PATH = "/llm/v1/chat/completions"
# The last content chunk ends with the mock's own time for the stream (nginx's $request_time:
# from the request's first bytes to that chunk, ms resolution), so a client can take the mock's
# timers out of each stream's latency (bench/openloop.py, docs/bench.md "The mock's own clock").
OWN_TIME = "mock-s="
WHOLE_PATH = "/slow/v1/chat/completions"


@dataclass(frozen=True)
class Shape:
    ttft_ms: int = 300
    chunk_ms: int = 20
    chunks: int = 100
    whole_ms: int = 1500

    @property
    def stream_s(self) -> float:
        """How long a stream takes at the mock itself."""
        return (self.ttft_ms + self.chunk_ms * (self.chunks - 1)) / 1000


def event(chunk: dict[str, object]) -> str:
    return f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n"


def stream_directives(shape: Shape) -> str:
    """echo directives: the role and first token after the TTFT, then one chunk per delay."""
    lines = [f"echo_sleep {shape.ttft_ms / 1000:.3f};"]
    first = event(stream_chunk({"role": "assistant", "content": ""}, None))
    for index in range(shape.chunks):
        if index:
            lines.append(f"echo_sleep {shape.chunk_ms / 1000:.3f};")
        word = f"word{index} " + (f"{OWN_TIME}$request_time" if index == shape.chunks - 1 else "")
        text = event(stream_chunk({"content": word}, None))
        lines.append(f"echo -n '{nginx_quoted((first if index == 0 else '') + text)}';")
        lines.append("echo_flush;")
    tail = event(stream_chunk({}, "stop")) + "data: [DONE]\n\n"
    lines.append(f"echo -n '{nginx_quoted(tail)}';")
    return "\n            ".join(lines)


def whole_directives(shape: Shape) -> str:
    body = json.dumps(completion(), separators=(",", ":"))
    return f"echo_sleep {shape.whole_ms / 1000:.3f};\n            echo -n '{nginx_quoted(body)}';"


def render_config(prefix: Path, port: int, shape: Shape) -> Path:
    text = Template(TEMPLATE.read_text()).substitute(
        module=str(ECHO_MODULE),
        prefix=str(prefix),
        port=port,
        stream=stream_directives(shape),
        whole=whole_directives(shape),
    )
    path = prefix / "nginx.conf"
    path.write_text(text)
    return path
