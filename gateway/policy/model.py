"""The policy's data model, as written in YAML (apiVersion floorgate.dev/v1, kind RoutingPolicy)."""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict

from gateway.policy.limits import Limits

NAME = r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$"
# Parameter names that carry credentials: they must be written as {env: NAME}, never inline.
# ${NAME} or ${NAME:-default} in an api_base, resolved from the environment at compile time.
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
SECRET_PARAM = re.compile(r"(key|secret|token|password|credential)", re.IGNORECASE)
# Providers that speak the OpenAI wire format and are called directly, without litellm.
OPENAI_WIRE_PROVIDERS = frozenset(
    {"openai", "openai_compatible", "hosted_vllm", "vllm", "llamacpp"}
)


class Strict(BaseModel):
    # Attribute docstrings become descriptions in the JSON Schema, so editors show them.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def _fragment(schema: JsonDict) -> None:
    """Let one file carry only part of a section: the loader merges the files of a directory
    and proves the merged policy complete, which a per-file schema cannot."""
    schema.pop("required", None)


class SecretRef(Strict):
    """A secret named by the environment variable that holds it."""

    env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class Trait(Strict):
    """A question the tree may ask about a workflow."""

    unsafe: bool
    """The answer that leads toward calibration-first; used when a workflow does not say."""
    description: str = ""


class Leaf(Strict):
    """The end of a branch: the route a workflow takes."""

    route: str


Branch = str | Leaf


class Node(Strict):
    """One question of the tree, and where each answer leads: another node, or {route: NAME}."""

    ask: str
    """The trait this node asks about; it must be declared under spec.traits."""
    yes: Branch
    no: Branch
    description: str = ""


class Tree(Strict, json_schema_extra=_fragment):
    """The decision tree: total and acyclic, checked by `floorgate check`."""

    start: str
    """The node every decision starts from."""
    nodes: dict[str, Node] = Field(min_length=1)


class Window(Strict):
    """The recent history a gate judges: the last `seconds`, the last `count` answers and
    feedback reports, or both (whichever is fewer). The stores keep 30 days of per-minute and
    per-hour counts and the latest 10,000 events per model (gateway/state/base.py)."""

    seconds: int | None = Field(default=None, gt=0, le=30 * 86400)
    """Measured in whole minutes up to 2 hours, in whole hours beyond."""
    count: int | None = Field(default=None, gt=0, le=10_000)

    @model_validator(mode="after")
    def _bounded(self) -> Window:
        if self.seconds is None and self.count is None:
            raise ValueError("a window needs seconds, count or both, e.g. {seconds: 86400}")
        return self


class Gate(Strict):
    """Live calibration limits: a model that fails them is skipped in this route's pool until
    it passes again. A limit is enforced once its rate has `min_samples` in the window."""

    max_escape_rate: float | None = Field(default=None, ge=0, le=1)
    """escaped_defect / (merged + merged_with_edits + escaped_defect)."""
    min_merge_rate: float | None = Field(default=None, ge=0, le=1)
    """(merged + merged_with_edits) / all feedback."""
    min_abstention_rate: float | None = Field(default=None, ge=0, le=1)
    max_abstention_rate: float | None = Field(default=None, ge=0, le=1)
    max_self_flag_rate: float | None = Field(default=None, ge=0, le=1)
    min_self_flag_rate: float | None = Field(default=None, ge=0, le=1)
    min_samples: int = Field(default=50, ge=1)
    window: Window = Window(seconds=86400)
    when_all_fail: Literal["serve_least_bad", "reject"] = "serve_least_bad"
    """Every model fails: serve the least bad (and raise floorgate_gate_all_failing), or 503."""


class Route(Strict):
    """Where a leaf sends a workflow: the models that may serve it, tried in order."""

    pool: list[str] = Field(min_length=1)
    # Higher is stricter; a caller may ask for a stricter route than its workflow's, never looser.
    strictness: int = 0
    description: str = ""
    # The calibration contract (gateway/calibration.py): off, or on with the client seeing
    # the contract's tool calls (passthrough) or their text (translate).
    calibration_contract: Literal["off", "passthrough", "translate"] = "off"
    gate: Gate | None = None
    """Live calibration limits each model must meet to serve this route."""
    admission: Literal["none", "required"] = "none"
    """`required`: every pool model needs an admission from `floorgate eval gate` that passed
    this route's gate, for this model and contract setting; check and the loader refuse
    a pool model without one (docs/eval.md)."""


class Wire(Strict):
    """What an OpenAI-wire upstream understands, where servers differ; a field left out takes
    its provider's default (gateway/upstream/dialect.py)."""

    max_tokens: Literal["max_tokens", "max_completion_tokens"] | None = None
    """The field that caps a reply: `max_tokens` (llama.cpp, vLLM and most servers; the
    default but for provider openai) or `max_completion_tokens` (OpenAI)."""
    json_schema: Literal["native", "json_object", "none"] | None = None
    """`response_format: json_schema`: sent as is (native, the default), rewritten as
    `{type: json_object, schema}` (llama-cpp-python's server), or refused with a 400 (none)."""
    responses: bool = False
    """Serves POST /responses itself (OpenAI does): a Responses request whose every candidate
    says so, with the calibration contract off, is passed through (streamed, event by event);
    every other one is translated to chat completions."""


class ModelSpec(Strict):
    """A model the policy may call; secrets only as {env: VAR_NAME}."""

    provider: str
    """A litellm provider name; OpenAI-wire providers (openai, openai_compatible, vllm,
    hosted_vllm, llamacpp) are called directly."""
    model: str
    """The model name the provider knows it by."""
    serves: Literal["chat", "embeddings"] = "chat"
    """Chat completions, from the pools of routes; or embeddings, for /v1/embeddings requests
    that name this model. Embedding models never fall back to one another: their vectors
    are not comparable."""
    api_base: str | None = None
    """The upstream's base URL. It may name environment variables, `${NAME}` or
    `${NAME:-default}` (the shipped policy: `${FLOORGATE_LOCAL_MODEL_PORT:-8081}`); one unset
    without a default leaves the model uncallable, like an unset api_key."""
    api_key: SecretRef | None = None
    transport: Literal["auto", "direct", "litellm"] = "auto"
    timeout_s: float = Field(default=600.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    first_token_timeout_s: float = Field(default=120.0, gt=0)
    retries: int = Field(default=1, ge=0, le=5)
    max_connections: int = Field(default=4096, ge=1, le=65536)
    """Connections the direct path keeps open at most to this model's upstream (shared with
    the models that name the same origin and the same limit). Every request in flight holds
    one, a stream for its whole length; beyond the limit a request waits for one to come free."""
    max_queued: int = Field(default=1024, ge=0, le=65536)
    """Requests that may wait at once for one of those connections (per origin and limit, as
    they are shared); one more is refused at once: it falls back to the route's next model,
    or gets a 503 with Retry-After. 0: never wait."""
    queue_timeout_s: float = Field(default=30.0, gt=0)
    """The longest a request waits for a free connection before it is refused the same way."""
    params: dict[str, Any] = Field(default_factory=dict)
    wire: Wire = Wire()
    """Dialect differences of an OpenAI-wire upstream: which fields it understands."""

    @field_validator("api_key", mode="before")
    @classmethod
    def _no_inline_key(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError(
                "api_key is written inline; reference it instead: api_key: {env: PROVIDER_API_KEY}"
            )
        return value

    @field_validator("api_base")
    @classmethod
    def _no_credentials_in_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        url = urlsplit(value)
        query = [name for name, _ in parse_qsl(url.query) if SECRET_PARAM.search(name)]
        if url.username or url.password or query:
            raise ValueError(
                "api_base carries credentials; remove them from the URL and reference the "
                "key instead: api_key: {env: PROVIDER_API_KEY}"
            )
        return value

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        """What the gateway's HTTP client can reach, refused here rather than on every call."""
        references = list(ENV_REFERENCE.finditer(value or ""))
        if value is None or any(found[2] is None for found in references):
            return value  # names a variable without a default: only its value can be checked
        try:
            url = urlsplit(ENV_REFERENCE.sub(lambda found: found[2], value))
            host, _ = url.hostname, url.port
            if host:
                host.encode("idna")
        except (ValueError, UnicodeError):
            raise ValueError(
                "api_base is not a URL with a valid host name and port, e.g. "
                "https://api.example.com/v1"
            ) from None
        if url.scheme.lower() not in ("http", "https") or not host:
            raise ValueError(
                "api_base must be an absolute http:// or https:// URL, e.g. https://api.example.com/v1"
            )
        return value

    @field_validator("params")
    @classmethod
    def _no_inline_secret_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        for name, value in params.items():
            if SECRET_PARAM.search(name) and not (isinstance(value, dict) and "env" in value):
                raise ValueError(
                    f"params.{name} looks like a secret; write it as {{env: VAR_NAME}}"
                )
        return params

    @property
    def direct(self) -> bool:
        """True when this model is called over the OpenAI wire format without litellm."""
        if self.transport != "auto":
            return self.transport == "direct"
        return self.provider in OPENAI_WIRE_PROVIDERS


class Workflow(Strict):
    """An agent workflow; a trait it does not declare counts as the trait's unsafe answer."""

    traits: dict[str, bool] = Field(default_factory=dict)
    description: str = ""
    # Overrides its route's calibration_contract when set.
    calibration_contract: Literal["off", "passthrough", "translate"] | None = None
    limits: Limits | None = None
    """Requests and tokens per minute, dollars per day, requests in flight; per key too."""


class PolicyTest(Strict):
    """An expectation the policy must meet: a workflow, or a set of traits, and its route."""

    workflow: str | None = None
    """A declared workflow, routed with the traits it declares."""
    traits: dict[str, bool] | None = None
    """Trait answers to route; a trait left out takes its unsafe answer."""
    expect: str
    """The route the tree must reach."""
    description: str = ""

    @model_validator(mode="after")
    def _one_subject(self) -> PolicyTest:
        if (self.workflow is None) == (self.traits is None):
            raise ValueError(
                "a test names either a workflow or traits (not both, not neither), "
                "e.g. {workflow: deploy-pipeline, expect: calibration-first}"
            )
        return self


class Spec(Strict, json_schema_extra=_fragment):
    """The policy. In a directory of files, each section may be split across the files."""

    traits: dict[str, Trait] = Field(min_length=1)
    """Every question the tree may ask, with its unsafe answer."""
    tree: Tree
    routes: dict[str, Route] = Field(min_length=1)
    models: dict[str, ModelSpec] = Field(min_length=1)
    workflows: dict[str, Workflow] = Field(default_factory=dict)
    default_workflow: str
    """Where a request with no workflow, or an undeclared one, routes."""
    tests: list[PolicyTest] = Field(default_factory=list)
    """Expectations `floorgate check` and every load prove; a failing test rejects the policy."""
    # Whether callers may name a declared model directly (still only within their route).
    expose_models: bool = False


class Metadata(Strict):
    name: str = Field(pattern=NAME)
    description: str = ""


class PolicyDocument(Strict):
    """A Floorgate routing policy (one file, or the files of one directory merged)."""

    apiVersion: Literal["floorgate.dev/v1"]
    kind: Literal["RoutingPolicy"]
    metadata: Metadata
    spec: Spec
