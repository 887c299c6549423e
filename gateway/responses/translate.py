"""The Responses API, translated to chat completions and back, for upstreams that lack it.

A Responses request (`input` as a string or items, `instructions`, flat function tools,
`text.format`, `max_output_tokens`, `reasoning`) becomes one chat request; the chat
completion becomes a Response object whose `output` holds a message item and a
`function_call` item per tool call. Conversations carried by `previous_response_id` arrive
here as the chat messages the earlier response was built from (gateway/responses/store.py).
"""

from __future__ import annotations

import os
import time
from typing import Any

import orjson

from gateway.errors import BadRequest

# Responses fields that map onto a chat field of the same name and meaning.
SAME_NAME = ("model", "temperature", "top_p", "parallel_tool_calls", "user", "metadata",
             "service_tier", "prompt_cache_key", "safety_identifier", "stream")  # fmt: skip
ROLES = ("user", "assistant", "system", "developer")
TEXT_PARTS = ("input_text", "output_text", "text")
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{os.urandom(16).hex()}"


def to_chat(
    request: dict[str, Any], history: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The chat request a Responses request asks for, and the conversation so far as input
    items: the `history` its previous response ended, then its input. Instructions are not
    part of the conversation: as at OpenAI, they do not carry over to the next response."""
    chat: dict[str, Any] = {k: request[k] for k in SAME_NAME if request.get(k) is not None}
    items = input_items(request.get("input"))
    messages: list[dict[str, Any]] = []
    for item in history:
        _item("previous_response_id", item, messages)
    for i, item in enumerate(items):
        _item(f"input[{i}]", item, messages)
    instructions = request.get("instructions")
    system = [{"role": "system", "content": instructions}] if instructions else []
    chat["messages"] = [*system, *messages]
    if request.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = request["max_output_tokens"]
    tools = [_tool(i, t) for i, t in enumerate(_typed(request, "tools", list)) if _function(t)]
    if tools:
        chat["tools"] = tools
    if request.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(request["tool_choice"])
    response_format = _format(request.get("text"))
    if response_format is not None:
        chat["response_format"] = response_format
    effort = _typed(request, "reasoning", dict).get("effort")
    if isinstance(effort, str):
        chat["reasoning_effort"] = effort
    if chat.get("stream"):
        chat["stream_options"] = {"include_usage": True}  # a Response always reports usage
    return chat, [*history, *items]


def _typed(request: dict[str, Any], name: str, kind: type[list[Any] | dict[str, Any]]) -> Any:
    """The field, or an empty one when it is left out or null; a 400 when it is not `kind`."""
    value = request.get(name) or kind()
    if not isinstance(value, kind):
        expected = "an array" if kind is list else "an object"
        raise BadRequest(f"Invalid type for '{name}': expected {expected}.", param=name)
    return value


def input_items(value: Any) -> list[dict[str, Any]]:
    """`input` as a list of items (a string is one user message)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise BadRequest(
            "'input' is required: a string, or a non-empty array of input items.", param="input"
        )
    return value


def _item(path: str, item: Any, messages: list[dict[str, Any]]) -> None:
    if not isinstance(item, dict):
        raise BadRequest(f"Invalid type for '{path}': expected an object.", param=path)
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if role not in ROLES:
            raise BadRequest(
                f"Invalid value for '{path}.role': supported values are "
                f"{', '.join(repr(r) for r in ROLES)}.",
                param=f"{path}.role",
            )
        messages.append({"role": role, "content": _content(path, item.get("content"))})
    elif kind == "function_call":
        call = {
            "id": _string(path, item, "call_id"),
            "type": "function",
            "function": {"name": _string(path, item, "name"), "arguments": item.get("arguments")
                         or "{}"},
        }  # fmt: skip
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant" and not _answered(messages):
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        content = output if isinstance(output, str) else orjson.dumps(output).decode()
        messages.append(
            {"role": "tool", "tool_call_id": _string(path, item, "call_id"), "content": content}
        )
    elif kind != "reasoning":  # reasoning items are the model's own; chat has no place for them
        raise BadRequest(
            f"Unsupported input item type '{str(kind)[:40]}' at '{path}.type': Floorgate "
            "translates message, function_call and function_call_output items.",
            param=f"{path}.type",
        )


def _answered(messages: list[dict[str, Any]]) -> bool:
    """True if the last message is an assistant's whose tool calls already got answers."""
    return bool(messages) and messages[-1]["role"] == "tool"


def _content(path: str, content: Any) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequest(
            f"Invalid type for '{path}.content': expected a string or an array of content parts.",
            param=f"{path}.content",
        )
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in TEXT_PARTS:
            parts.append({"type": "text", "text": str(part.get("text") or "")})
        elif kind == "refusal":
            parts.append({"type": "text", "text": str(part.get("refusal") or "")})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            image = {"url": part["image_url"], "detail": part.get("detail") or "auto"}
            parts.append({"type": "image_url", "image_url": image})
        else:
            where = f"{path}.content[{j}]"
            raise BadRequest(
                f"Unsupported content part at '{where}': use input_text, output_text or "
                "input_image with an image_url.",
                param=where,
            )
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)  # plain text: every server reads it
    return parts


def _string(path: str, item: dict[str, Any], name: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Missing required parameter: '{path}.{name}'.", param=f"{path}.{name}")
    return value


def _function(tool: Any) -> bool:
    """Function tools are translated; the others (hosted ones such as web_search, which
    only OpenAI runs, and namespaces) are left out: a chat upstream has no way to run them,
    and clients such as Codex send them with every request. A tool_choice forcing one is a
    400 (see _tool_choice)."""
    if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
        raise BadRequest("Invalid 'tools': each tool is an object with a 'type'.", param="tools")
    return bool(tool["type"] == "function")


def _tool(i: int, tool: dict[str, Any]) -> dict[str, Any]:
    path = f"tools[{i}]"
    function = {"name": _string(path, tool, "name")}
    for name in ("description", "parameters", "strict"):
        if tool.get(name) is not None:
            function[name] = tool[name]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict):
        raise BadRequest(
            f"Unsupported 'tool_choice' type '{str(choice.get('type'))[:40]}': Floorgate "
            "translates function tools only for this model.",
            param="tool_choice",
        )
    raise BadRequest(
        "Invalid 'tool_choice': use 'auto', 'none', 'required' or "
        '{"type": "function", "name": "..."}.',
        param="tool_choice",
    )


def _format(text: Any) -> dict[str, Any] | None:
    form = text.get("format") if isinstance(text, dict) else None
    if not isinstance(form, dict) or form.get("type") in (None, "text"):
        return None
    if form["type"] == "json_object":
        return {"type": "json_object"}
    if form["type"] == "json_schema":
        spec = {k: form[k] for k in ("name", "schema", "strict", "description") if k in form}
        return {"type": "json_schema", "json_schema": spec}
    raise BadRequest(
        "Invalid 'text.format.type': use 'text', 'json_object' or 'json_schema'.",
        param="text.format.type",
    )


def output_items(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A chat message as Responses output items: its text, then one item per tool call."""
    items: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    if message.get("content"):
        parts.append(output_text(str(message["content"])))
    if message.get("refusal"):
        parts.append({"type": "refusal", "refusal": str(message["refusal"])})
    if parts:
        items.append(message_item(new_id("msg"), parts, "completed"))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        items.append(
            function_call_item(
                new_id("fc"),
                str(call.get("id") or new_id("call")),
                str(function.get("name") or ""),
                str(function.get("arguments") or ""),
                "completed",
            )
        )
    return items


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, content: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant",
            "content": content}  # fmt: skip


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call_id,
            "name": name, "arguments": arguments}  # fmt: skip


def usage(chat_usage: Any) -> dict[str, Any]:
    u = chat_usage if isinstance(chat_usage, dict) else {}
    prompt, completion = int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)
    cached = int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    reasoning = int((u.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }


def response_object(
    response_id: str, request: dict[str, Any], status: str, output: list[dict[str, Any]]
) -> dict[str, Any]:
    """A Response as the API returns it, echoing the request's settings."""
    text = request.get("text") if isinstance(request.get("text"), dict) else None
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": request.get("model"),
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": (request.get("reasoning") or {}).get("effort"), "summary": None},
        "store": request.get("store", True),
        "temperature": request.get("temperature", 1.0),
        "text": text or {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p", 1.0),
        "truncation": request.get("truncation") or "disabled",
        "usage": None,
        "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }


def renamed(response: dict[str, Any], response_id: str, request: dict[str, Any]) -> dict[str, Any]:
    """An upstream's own Response under the gateway's id and the model the client named."""
    return {**response, "id": response_id, "model": request.get("model"),
            "previous_response_id": request.get("previous_response_id"),
            "store": request.get("store", True)}  # fmt: skip


def finish(response: dict[str, Any], finish_reason: str | None, chat_usage: Any) -> None:
    """Close `response` as the chat choice finished: completed, or incomplete and why."""
    reason = INCOMPLETE.get(finish_reason or "")
    response["status"] = "incomplete" if reason else "completed"
    response["incomplete_details"] = {"reason": reason} if reason else None
    response["usage"] = usage(chat_usage)


def from_completion(
    response_id: str, request: dict[str, Any], completion: dict[str, Any]
) -> dict[str, Any]:
    """The Response for a (non-streamed) chat completion."""
    choice = (completion.get("choices") or [{}])[0]
    output = output_items(choice.get("message") or {})
    response = response_object(response_id, request, "completed", output)
    finish(response, choice.get("finish_reason"), completion.get("usage"))
    return response


def assistant_message(output: list[dict[str, Any]]) -> dict[str, Any]:
    """The chat message a response's output items stand for."""
    text = "".join(
        str(part.get("text") or "")
        for item in output
        if item.get("type") == "message"
        for part in item.get("content") or ()
        if isinstance(part, dict)
    )
    calls = [
        {"id": item.get("call_id"), "type": "function",
         "function": {"name": item.get("name"), "arguments": item.get("arguments") or ""}}
        for item in output
        if item.get("type") == "function_call"
    ]  # fmt: skip
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message


def as_completion(response: dict[str, Any]) -> dict[str, Any]:
    """A Response seen as the chat completion it amounts to: what the classifier and the
    token counters read."""
    output = [i for i in response.get("output") or () if isinstance(i, dict)]
    message = assistant_message(output)
    refusals = [str(p.get("refusal") or "") for i in output if i.get("type") == "message"
                for p in i.get("content") or () if isinstance(p, dict)
                and p.get("type") == "refusal"]  # fmt: skip
    if refusals:
        message["refusal"] = "".join(refusals)
    reason = (response.get("incomplete_details") or {}).get("reason")
    finish = {"max_output_tokens": "length", "content_filter": "content_filter"}.get(str(reason))
    usage = response.get("usage") or {}
    return {
        "choices": [{"index": 0, "message": message, "finish_reason": finish or "stop"}],
        "usage": {
            "prompt_tokens": int(usage.get("input_tokens") or 0),
            "completion_tokens": int(usage.get("output_tokens") or 0),
        },
    }
