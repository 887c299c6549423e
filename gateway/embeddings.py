"""/v1/embeddings, up to the upstream call: which model, for which workflow, on what input.

The request names an embedding model by its policy name (`serves: embeddings`). No route or
decision tree is involved: the tree chooses who may act, and an embedding acts on nothing.
The workflow (from the key, the X-Floorgate-Workflow header, or the default) labels the
metrics. A model is never swapped for another: vectors from two models are not comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.errors import BadRequest, ModelNotFound, Unavailable
from gateway.exchange import Headers
from gateway.fields import check_embeddings_body
from gateway.identify import workflow_for
from gateway.metrics import NONE
from gateway.plan import Request, parse_json
from gateway.policy.compiled import ModelTarget, Policy
from gateway.runtime import Answered, Runtime

ENCODINGS = ("float", "base64")
MAX_INPUTS = 2048  # as OpenAI: items in one request


@dataclass(slots=True)
class EmbeddingCall:
    request_id: str
    policy: Policy
    workflow: str
    target: ModelTarget
    body: dict[str, Any]
    key: str  # the caller's name, for its limits
    limit_headers: Headers | tuple[()] = ()  # x-ratelimit-*, once admitted

    def answered(self) -> Answered:
        return Answered(self.request_id, self.workflow, NONE, self.target.name, self.policy.version)

    def error_headers(self) -> Headers:
        return self.headers()

    def headers(self) -> Headers:
        return [
            (b"x-floorgate-request-id", self.request_id.encode()),
            (b"x-floorgate-workflow", self.workflow.encode()),
            (b"x-floorgate-model", self.target.name.encode()),
            (b"x-floorgate-policy-version", self.policy.version.encode()),
            *self.limit_headers,
        ]


def plan_embeddings(rt: Runtime, request_id: str, request: Request) -> EmbeddingCall:
    caller = request.caller
    body = parse_json(request.raw)
    check_embeddings_body(body)
    check_input(body)
    policy = rt.policies.current
    target = embedding_model(policy, body.get("model"))
    workflow, _ = workflow_for(policy, caller, request.workflow, body, None)
    return EmbeddingCall(request_id, policy, workflow, target, body, caller.name)


def embedding_model(policy: Policy, name: object) -> ModelTarget:
    models = policy.embedding_models
    if not isinstance(name, str) or not name:
        raise BadRequest(
            f"'model' is required: name an embedding model ({_listed(models)}).", param="model"
        )
    if name not in models:
        raise ModelNotFound(
            f"The model '{name[:80]}' is not an embedding model of this gateway. "
            f"Embedding models: {_listed(models)}.",
            param="model",
        )
    target = policy.models[name]
    if not target.usable:
        raise Unavailable(
            f"Model '{name}' cannot be called: set {', '.join(target.missing_env)} in the "
            "gateway's environment, or change the policy."
        )
    return target


def check_input(body: dict[str, Any]) -> None:
    """`input` is a string, a list of strings, a token list, or a list of token lists."""
    value = body.get("input")
    if isinstance(value, str):
        items: list[Any] = [value]
    elif isinstance(value, list) and value:
        items = value
        if all(_is_token(v) for v in items):
            items = [items]  # one token list
    else:
        raise BadRequest(
            "'input' is required: a string, or a non-empty array of strings or token arrays.",
            param="input",
        )
    if len(items) > MAX_INPUTS:
        raise BadRequest(
            f"Invalid 'input': at most {MAX_INPUTS} items, but got {len(items)}.", param="input"
        )
    for i, item in enumerate(items):
        ok = (isinstance(item, str) and item) or (
            isinstance(item, list) and item and all(_is_token(v) for v in item)
        )
        if not ok:
            raise BadRequest(
                f"Invalid 'input[{i}]': each item is a non-empty string or an array of token ids.",
                param=f"input[{i}]",
            )
    if body.get("encoding_format") not in (None, *ENCODINGS):
        raise BadRequest(
            "Invalid 'encoding_format': supported values are 'float' and 'base64'.",
            param="encoding_format",
        )
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1
    ):
        raise BadRequest("Invalid 'dimensions': expected an integer >= 1.", param="dimensions")


def _is_token(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _listed(names: tuple[str, ...]) -> str:
    return ", ".join(names) if names else "none is declared; see serves: embeddings"
