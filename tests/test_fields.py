"""The body-size guard before parsing (gateway/fields.py check_raw_size): it refuses only what
surely holds more than MAX_ITEMS list items and object members, counted over the raw bytes."""

from __future__ import annotations

import orjson
import pytest

from gateway.errors import BadRequest
from gateway.fields import MAX_ITEMS, check_raw_size


def refused(raw: bytes) -> bool:
    try:
        check_raw_size(raw)
    except BadRequest as exc:
        assert exc.code == "too_many_items" and str(MAX_ITEMS) in exc.message
        return True
    return False


def test_a_flat_list_over_the_limit_is_refused_before_parsing() -> None:
    assert refused(orjson.dumps({"metadata": {"rows": [0] * (MAX_ITEMS + 2)}}))
    assert not refused(orjson.dumps({"metadata": {"rows": [0] * MAX_ITEMS}}))


def test_more_strings_than_a_body_within_the_limit_can_hold_is_refused() -> None:
    assert refused(b"[" + b",".join([b'"a"'] * (2 * MAX_ITEMS + 1)) + b"]")


def test_an_object_of_more_members_than_the_limit_is_refused() -> None:
    assert refused(orjson.dumps({f"k{i}": 0 for i in range(MAX_ITEMS + 2)}))


def test_escaped_quotes_are_no_strings() -> None:
    # A JSON document sent as a string: many escaped quotes, and `\":` is no key's end.
    document = orjson.dumps({f"k{i}": i for i in range(2 * MAX_ITEMS + 1)}).decode()
    raw = orjson.dumps({"messages": [{"role": "user", "content": document}]})
    assert raw.count(b'"') > 4 * MAX_ITEMS and raw.count(b'":') > MAX_ITEMS
    assert not refused(raw)


@pytest.mark.parametrize(
    "text",
    ["a," * (MAX_ITEMS + 1), 'say \\"a,b\\", ' * (MAX_ITEMS // 2 + 1)],
    ids=["commas", "escaped-quotes"],
)
def test_commas_inside_strings_are_not_items(text: str) -> None:
    raw = b'{"messages": [{"role": "user", "content": "' + text.encode() + b'"}]}'
    assert not refused(raw)


def test_an_escaped_backslash_ends_its_string() -> None:
    # "a\\" is a string ending in one backslash: the commas after it are outside strings.
    raw = b'["a\\\\", ' + b"0," * (MAX_ITEMS + 1) + b"0]"
    assert orjson.loads(raw)[0] == "a\\"
    assert refused(raw)
