"""The shapes of the chat completion fields, checked before any model is called.

A malformed request is the caller's to fix, and every model would refuse it: answering it
here gives one clear 400 naming the field, where the upstream would give a provider's own
error, sometimes a 500 that would be retried and fallen back on for nothing. Only the
shapes are checked (types, ranges, roles), in the wording OpenAI uses; what a given model
supports stays the model's to say. `null` is accepted wherever a field is optional.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import BadRequest

# (lowest, highest) of each numeric field; None is unbounded.
NUMBERS: dict[str, tuple[float | None, float | None]] = {
    "temperature": (0, 2),
    "top_p": (0, 1),
    "frequency_penalty": (-2, 2),
    "presence_penalty": (-2, 2),
}
INTEGERS: dict[str, tuple[int | None, int | None]] = {
    "n": (1, 128),
    "max_tokens": (1, None),
    "max_completion_tokens": (1, None),
    "top_logprobs": (0, 20),
    "seed": (None, None),
}
BOOLEANS = ("stream", "logprobs", "parallel_tool_calls", "store")
OBJECTS = ("response_format", "stream_options", "metadata", "logit_bias", "prediction", "audio")
STRINGS = ("user", "reasoning_effort", "service_tier", "verbosity", "prompt_cache_key")
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
TOOL_CHOICES = ("none", "auto", "required")


def check_chat_shapes(body: dict[str, Any]) -> None:
    """Raise BadRequest naming the first field whose shape is wrong."""
    _scalars(body)
    _stop(body.get("stop"))
    _tools(body.get("tools"))
    _tool_choice(body.get("tool_choice"))
    _response_format(body.get("response_format"))
    if body.get("stream_options") is not None and body.get("stream") is not True:
        raise BadRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )
    for i, message in enumerate(body["messages"]):
        # The common turn, text in a role that asks nothing more: passed, and no path made.
        role = message.get("role") if type(message) is dict else None
        if role in _TEXT_ROLES and type(message.get("content")) is str:
            continue
        _message(f"messages[{i}]", message)


# The roles whose turn, with text content, _message would pass with no further check.
_TEXT_ROLES = ("user", "system", "assistant", "developer", "function")


# Each scalar field's place in the order above: the first wrong one, in this order, is named.
_SCALAR_ORDER = {
    name: place for place, name in enumerate((*NUMBERS, *INTEGERS, *BOOLEANS, *OBJECTS, *STRINGS))
}
_SCALARS = frozenset(_SCALAR_ORDER)
_TYPED: dict[str, tuple[type, str]] = {
    **{name: (bool, "a boolean") for name in BOOLEANS},
    **{name: (dict, "an object") for name in OBJECTS},
    **{name: (str, "a string") for name in STRINGS},
}


def _scalars(body: dict[str, Any]) -> None:
    # Only the fields the body has (a request sends a few of the 25): found in C, then put
    # in order; asking for each of the 25 in turn was a third of the chat body's check.
    for name in sorted(body.keys() & _SCALARS, key=_SCALAR_ORDER.__getitem__):
        value = body[name]
        if value is None:
            continue
        if name in NUMBERS:
            _number(name, value, *NUMBERS[name], "a number")
        elif name in INTEGERS:
            if not isinstance(value, int) or isinstance(value, bool):
                raise _type(name, "an integer", value)
            _number(name, value, *INTEGERS[name], "an integer")
        else:
            kind, described = _TYPED[name]
            if not isinstance(value, kind):
                raise _type(name, described, value)


def _message(path: str, message: Any) -> None:
    if not isinstance(message, dict):
        raise _type(path, "an object", message)
    role = message.get("role")
    if role is None:
        raise _missing(f"{path}.role")
    if role not in ROLES:
        raise _value(f"{path}.role", role, ROLES)
    _content(path, role, message.get("content"))
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise _missing(f"{path}.tool_call_id")


def _content(path: str, role: str, content: Any) -> None:
    if content is None:
        # An assistant turn may carry only tool calls; every other turn says something.
        if role != "assistant":
            raise _missing(f"{path}.content")
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise BadRequest(
                    f"Invalid '{path}.content[{j}]': a content part is an object with a "
                    '\'type\', such as {"type": "text", "text": "..."}.',
                    param=f"{path}.content[{j}]",
                )
    elif not isinstance(content, str):
        raise _type(f"{path}.content", "a string or an array of content parts", content)


def _stop(stop: Any) -> None:
    if stop is None or isinstance(stop, str):
        return
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise _type("stop", "a string or an array of strings", stop)


def _tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _type("tools", "an array", tools)
    for i, tool in enumerate(tools):
        path = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise _type(path, "an object", tool)
        kind = tool.get("type")
        if kind == "function":
            function = tool.get("function")
            if not isinstance(function, dict):
                raise _missing(f"{path}.function")
            if not isinstance(function.get("name"), str) or not function["name"]:
                raise _missing(f"{path}.function.name")
        elif kind != "custom":
            raise _value(f"{path}.type", kind, ("function", "custom"))


def _response_format(value: Any) -> None:
    """A json_schema format's `json_schema` is read, for the models that take it as
    json_object with its schema (gateway/upstream/dialect.py)."""
    if isinstance(value, dict) and value.get("type") == "json_schema":
        spec = value.get("json_schema")
        if spec is not None and not isinstance(spec, dict):
            raise _type("response_format.json_schema", "an object", spec)


def _tool_choice(choice: Any) -> None:
    if choice is None or isinstance(choice, dict):
        return
    if choice not in TOOL_CHOICES:
        raise _value("tool_choice", choice, TOOL_CHOICES)


def _number(name: str, value: Any, low: float | None, high: float | None, described: str) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _type(name, described, value)
    if low is not None and value < low:
        raise BadRequest(
            f"Invalid '{name}': expected a value >= {low}, but got {value} instead.", param=name
        )
    if high is not None and value > high:
        raise BadRequest(
            f"Invalid '{name}': expected a value <= {high}, but got {value} instead.", param=name
        )


_JSON_TYPES = {str: "a string", bool: "a boolean", int: "a number", float: "a number"}


def _type(path: str, expected: str, value: Any) -> BadRequest:
    if isinstance(value, dict):
        got = "an object"
    elif isinstance(value, list):
        got = "an array"
    else:
        got = _JSON_TYPES.get(type(value), "null" if value is None else "another type")
    return BadRequest(
        f"Invalid type for '{path}': expected {expected}, but got {got} instead.", param=path
    )


def _value(path: str, value: Any, allowed: tuple[str, ...]) -> BadRequest:
    listed = ", ".join(f"'{a}'" for a in allowed)
    shown = str(value)[:40]
    return BadRequest(
        f"Invalid value for '{path}': '{shown}'. Supported values are: {listed}.", param=path
    )


def _missing(path: str) -> BadRequest:
    return BadRequest(f"Missing required parameter: '{path}'.", param=path)
