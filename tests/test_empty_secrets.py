"""An empty secret would be the empty token's (`Authorization: Bearer ` would pass): the
gateway refuses to start with one, whether inline, in the admin key or behind a keys file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from gateway.errors import Unauthorized
from gateway.keys import KeyRing
from gateway.settings import Settings


@pytest.mark.parametrize("field", ["admin_key", "api_keys"])
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_admin_or_inline_key_is_refused_at_start(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=f"FLOORGATE_{field.upper()} is set but empty"):
        Settings(**{field: SecretStr(value)}, _env_file=None)  # type: ignore[arg-type]


def test_an_inline_entry_with_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="entry 2 has an empty key"):
        KeyRing.load(None, "key-a=*, =deploy-pipeline")


@pytest.mark.parametrize("value", [None, "", "   "])
def test_a_keys_file_entry_whose_variable_is_empty_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("FLOORGATE_TEST_EMPTY_KEY", raising=False)
    else:
        monkeypatch.setenv("FLOORGATE_TEST_EMPTY_KEY", value)
    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n  - {name: ci, key: {env: FLOORGATE_TEST_EMPTY_KEY}}\n")
    with pytest.raises(ValueError, match="FLOORGATE_TEST_EMPTY_KEY, which is unset or empty"):
        KeyRing.load(path, None)


def test_the_empty_token_authenticates_nobody() -> None:
    ring = KeyRing.load(None, "key-a=*")
    for authorization in ("Bearer ", "Bearer    ", "Bearer"):
        with pytest.raises(Unauthorized, match="API key"):
            ring.authenticate(authorization)
