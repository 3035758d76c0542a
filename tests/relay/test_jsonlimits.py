"""Deep JSON is refused before the parser recurses; everything else parses exactly as json.loads does."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay import jsonlimits
from relay.jsonlimits import MAX_DEPTH, TooDeep, loads


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_the_limit_itself_parses_and_one_more_level_is_refused():
    assert loads(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))
    with pytest.raises(TooDeep, match=f"deeper than {MAX_DEPTH} levels"):
        loads(nested(MAX_DEPTH + 1))


@pytest.mark.parametrize("depth", [1_000, 100_000, 1_000_000])
def test_very_deep_documents_never_reach_the_parser(depth):
    with pytest.raises(TooDeep):
        loads(("{" + '"a":' ) * depth + "1" + "}" * depth)
    with pytest.raises(TooDeep):
        loads(nested(depth).encode())


def test_brackets_inside_strings_do_not_count():
    doc = json.dumps({"body": "[" * 5000, "escaped": '\\"[[[[' * 100, "unicode": "é[{" * 100})
    assert loads(doc) == json.loads(doc)
    assert loads(doc.encode()) == json.loads(doc)


def test_many_shallow_brackets_are_fine():
    doc = json.dumps([[i, {"k": [i]}] for i in range(5000)])
    assert loads(doc) == json.loads(doc)


def test_invalid_json_still_raises_json_errors():
    with pytest.raises(json.JSONDecodeError):
        loads(b'{"a": ')
    with pytest.raises(json.JSONDecodeError):
        loads("")


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
                    max_leaves=30))
def test_any_document_parses_as_json_loads_does_or_is_too_deep(value):
    text = json.dumps(value)
    if depth(value) > MAX_DEPTH:
        with pytest.raises(TooDeep):
            loads(text)
    else:
        assert loads(text) == json.loads(text) == loads(text.encode())


def depth(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


def test_a_key_twice_in_one_object_is_refused():
    """Issue 23 #18: json.loads keeps the last of two equal keys; another parser may keep the first."""
    with pytest.raises(jsonlimits.DuplicateKey, match="'a' appears twice"):
        jsonlimits.loads(b'{"b": {"a": 1, "a": 2}}')
    assert jsonlimits.loads(b'[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]
