"""Failing interactions out of a verification result, for the Rust and the Ruby verifiers' formats (pure)."""

from __future__ import annotations

import json
import re
from typing import Any

MAX_INTERACTIONS = 50
MAX_MISMATCHES = 20
MAX_TEXT = 2000
MAX_DOC = 8 * 1024  # a request or expected response kept for show, as JSON
RUBY = "pact-provider-verifier (Ruby)"
_RUBY_PATH = re.compile(r" at (\$\S*)\s*$")
_RUBY_STATUS = re.compile(r"expected:\s*(\S+)\s+got:\s*(\S+)")
_RUBY_HEADER = re.compile(r'^"([^"]+)" which')


class UnknownShape(ValueError):
    """A result this relay cannot read: shown as 'details unavailable' with its link."""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


def _mismatch(attribute: str | None, path: str | None, expected: Any, actual: Any, message: str | None) -> dict:
    return {"attribute": _text(attribute), "path": _text(path), "expected": _text(expected),
            "actual": _text(actual), "message": _text(message)}


def _bounded_doc(doc: Any) -> Any:
    if not isinstance(doc, dict):
        return None
    if len(json.dumps(doc)) <= MAX_DOC:
        return doc
    return {**{k: v for k, v in doc.items() if k != "body"}, "body": "(too large to show)"}


def provider_states(interaction: dict) -> list[str]:
    """The provider states of a pact interaction: `providerState` (pact v2) or `providerStates` (v3, v4)."""
    states = interaction.get("providerStates")
    if isinstance(states, list):
        return [str(s.get("name")) for s in states if isinstance(s, dict) and s.get("name")]
    state = interaction.get("providerState") or interaction.get("provider_state")
    return [str(state)] if state else []


def verifier(result: dict) -> dict:
    """Name and version of the verifier that published `result`."""
    by = result.get("verifiedBy")
    if isinstance(by, dict) and (by.get("implementation") or by.get("clientLanguage")):
        client = by.get("clientLanguage") if isinstance(by.get("clientLanguage"), dict) else {}
        name = str(by.get("implementation") or "")
        if client.get("name"):
            name = f"{client['name']} ({name})" if name else str(client["name"])
        return {"name": _text(name), "version": _text(client.get("version") or by.get("version"))}
    if isinstance(result.get("testResults"), dict) and "tests" in result["testResults"]:
        return {"name": RUBY, "version": None}
    return {"name": None, "version": None}


def failing_interactions(result: dict, pact: dict | None = None) -> dict:
    """The stored details: verifier, failing interactions (states, request, expected response, mismatches).

    Raises UnknownShape for a result that is neither format. `pact` (the verified pact, from the broker) adds
    what results leave out: provider states (Rust), request and expected response (both)."""
    tests = result.get("testResults")
    if isinstance(tests, list):
        found = _rust(tests)
    elif isinstance(tests, dict) and isinstance(tests.get("tests"), list):
        found = _ruby(tests["tests"])
    else:
        raise UnknownShape("the verification result has no testResults this relay can read")
    interactions = _pact_interactions(pact)
    for item in found:
        source = _match(interactions, item.pop("_id", None), item["description"], item["providerStates"])
        if source is not None:
            if not item["providerStates"]:
                item["providerStates"] = provider_states(source)
            item["request"] = _bounded_doc(source.get("request"))
            item["response"] = _bounded_doc(source.get("response"))
    truncated = len(found) > MAX_INTERACTIONS or any(item.pop("_more", False) for item in found)
    return {"verifier": verifier(result), "interactions": found[:MAX_INTERACTIONS], "truncated": truncated}


def _interaction(description: Any, states: list[str], mismatches: list[dict], id_: Any = None) -> dict:
    return {"description": _text(description) or "", "providerStates": states, "request": None, "response": None,
            "mismatches": mismatches[:MAX_MISMATCHES], "_more": len(mismatches) > MAX_MISMATCHES, "_id": id_}


def _rust(tests: list) -> list[dict]:
    """pact_verifier: one entry per interaction, `mismatches` of {attribute, identifier, description, ...}."""
    found = []
    for test in tests:
        if not isinstance(test, dict):
            raise UnknownShape("a test result is not an object")
        if test.get("success") is not False:
            continue
        mismatches = []
        for m in test.get("mismatches") or []:
            if not isinstance(m, dict):
                continue
            attribute = m.get("attribute") or m.get("type")
            path = m.get("identifier") or m.get("key") or m.get("path")
            mismatches.append(_mismatch(attribute, path, m.get("expected"), m.get("actual"),
                                        m.get("description") or m.get("mismatch")))
        if not mismatches and test.get("exception"):
            mismatches.append(_mismatch(None, None, None, None, str(test["exception"])))
        found.append(_interaction(test.get("interactionDescription"), [], mismatches,
                                  test.get("interactionId") or None))
    return found


def _ruby(tests: list) -> list[dict]:
    """pact-provider-verifier: one entry per expectation (status, each header, body), grouped by interaction."""
    grouped: dict[tuple[str, str], dict] = {}
    for test in tests:
        if not isinstance(test, dict):
            raise UnknownShape("a test result is not an object")
        if test.get("status") != "failed":
            continue
        description = str(test.get("interactionDescription") or "")
        state = str(test.get("interactionProviderState") or "")
        item = grouped.setdefault((description, state),
                                  _interaction(description, [state] if state else [], [], None))
        item["mismatches"].extend(_ruby_mismatches(test))
    for item in grouped.values():
        item["_more"] = len(item["mismatches"]) > MAX_MISMATCHES
        item["mismatches"] = item["mismatches"][:MAX_MISMATCHES]
    return list(grouped.values())


def _ruby_mismatches(test: dict) -> list[dict]:
    what = str(test.get("testDescription") or "")
    message = str((test.get("exception") or {}).get("message") or "") if isinstance(test.get("exception"), dict) \
        else ""
    if what.startswith("has status code"):
        status = _RUBY_STATUS.search(message)
        expected, actual = (status.group(1), status.group(2)) if status else (what.rsplit(" ", 1)[-1], None)
        return [_mismatch("status", None, expected, actual or test.get("actualStatus"),
                          f"expected {expected} but was {actual or test.get('actualStatus')}")]
    header = _RUBY_HEADER.match(what)
    if header:
        actual = (test.get("actualHeaders") or {}).get(header.group(1)) if isinstance(test.get("actualHeaders"),
                                                                                     dict) else None
        return [_mismatch("header", header.group(1), what.split(" which ", 1)[-1], actual,
                          message.strip() or what)]
    differences = [d for d in test.get("differences") or [] if isinstance(d, dict) and d.get("description")]
    if differences:
        found = []
        for d in differences:
            text = str(d["description"])
            path = _RUBY_PATH.search(text)
            found.append(_mismatch("body", path.group(1) if path else None, None, None, text))
        return found
    return [_mismatch("body" if "body" in what else None, None, None, None, message.strip() or what)]


def _pact_interactions(pact: dict | None) -> list[dict]:
    items = (pact or {}).get("interactions")
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _match(interactions: list[dict], id_: Any, description: str, states: list[str]) -> dict | None:
    """The pact interaction a result names: by the broker's `_id`, else by description (and states, if known)."""
    if id_:
        for interaction in interactions:
            if interaction.get("_id") == id_:
                return interaction
    same = [i for i in interactions if i.get("description") == description]
    if len(same) > 1 and states:
        same = [i for i in same if provider_states(i) == states] or same
    return same[0] if same else None
