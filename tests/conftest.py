"""Shared fixtures: the fake upstream and the gateway, both real servers on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from gateway.app import Floorgate, create_app
from gateway.settings import Settings
from tests.fake_upstream import FakeUpstream
from tests.limits_gateway import limits_policy_file
from tests.redis_cluster import RUNNING, redis_cluster
from tests.servers import serve_in_thread

HERE = Path(__file__).parent
UPSTREAM_KEY = "sk-fake-upstream-0123456789"
ADMIN_KEY = "session-admin-key"
# A key bound to one workflow, one bound to two, one that may use any.
KEYS = "key-deploy=deploy-pipeline,key-two=bulk-summarization|draft-generation,key-any=*"

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# The loop-lag overload rule (gateway/overload.py) is off for the gateways the suite runs in
# its own process (and the chaos rig's, which imports this): they share one GIL with every
# client thread and server of a test, and on a loaded machine their loops read a second
# behind, and refused unrelated tests' requests with 503 overloaded. The rule is tested on a
# real `floorgate serve`, whose environment the test sets (tests/test_overload.py).
os.environ.setdefault("FLOORGATE_OVERLOAD_LAG_S", "0")
# The queue-wait rule likewise (and only `floorgate serve` measures the wait): a test's
# `floorgate serve` that inherits this environment takes up connections on a machine running
# the rest of the suite beside it, where they can wait 250 ms for seconds. It is tested on a
# `floorgate serve` of its own (tests/test_overload_queue.py).
os.environ.setdefault("FLOORGATE_OVERLOAD_QUEUE_WAIT_S", "0")


STORES = ["memory", "redis", "cluster"]


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    """A three-node Redis Cluster on loopback (tests/redis_cluster.py), for the session."""
    with redis_cluster() as url:
        RUNNING.append(url)
        yield url
        RUNNING.clear()


@pytest.fixture(params=STORES)
def kind(request: pytest.FixtureRequest) -> str:
    """Each state store in turn (memory, the shared Redis, the cluster, started when first
    asked for); tests/test_state_contract.py's run() opens it."""
    if request.param == "cluster":
        request.getfixturevalue("cluster_url")
    return str(request.param)


@pytest.fixture(scope="session")
def certificate(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path]:
    """A self-signed certificate and its key for 127.0.0.1, for TLS servers on loopback."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    fake.start()
    yield fake
    fake.stop()


def write_policy(directory: Path, upstream: FakeUpstream) -> Path:
    text = (HERE / "policies" / "integration.yaml").read_text()
    path = directory / "policy.yaml"
    path.write_text(text.replace("__UPSTREAM__", upstream.base_url))
    return path


@pytest.fixture(scope="session")
def limits_policy(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/policies/limits.yaml: a workflow for each limit the limits tests need."""
    return limits_policy_file(tmp_path_factory.mktemp("limits"), upstream)


@pytest.fixture(scope="session")
def policy_path(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_policy(tmp_path_factory.mktemp("policy"), upstream)


@pytest.fixture(scope="session")
def gateway_app(policy_path: Path) -> Floorgate:
    os.environ["FAKE_UPSTREAM_KEY"] = UPSTREAM_KEY
    settings = Settings(
        policies=policy_path, api_keys=KEYS, admin_key=SecretStr(ADMIN_KEY), _env_file=None
    )  # type: ignore[call-arg]
    return create_app(settings, CollectorRegistry())


@pytest.fixture(scope="session")
def gateway(gateway_app: Floorgate) -> Iterator[str]:
    with serve_in_thread(gateway_app) as url:
        yield url


def client_for(gateway: str, key: str = "key-any", **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0, **kwargs)  # type: ignore[arg-type]


SAMPLE_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def count(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """The sample's value; 0 for a series of an exported metric not counted yet (a labelled
    counter has no sample before its first increment). A name no metric exports fails, so
    that `== 0` cannot pass on a renamed or removed metric."""
    value = registry.get_sample_value(name, labels)
    if value is not None:
        return value
    families = {family.name for family in registry.collect()}
    stems = {name} | {name.removesuffix(s) for s in SAMPLE_SUFFIXES if name.endswith(s)}
    assert stems & families, f"no metric named {name} is exported"
    return 0.0


def counted(registry: CollectorRegistry, name: str, want: float, **labels: str) -> float:
    """The sample's value once it reaches `want`, or after 2 s. Metrics are recorded after
    the last byte has gone to the client, so the client can get here first."""
    deadline = time.monotonic() + 2
    while count(registry, name, **labels) < want and time.monotonic() < deadline:
        time.sleep(0.01)
    return count(registry, name, **labels)


@pytest.fixture
def client(gateway: str) -> Iterator[openai.OpenAI]:
    with client_for(gateway) as c:
        yield c
