"""The audit log: what is recorded, the hash chain and its verification, concurrent appends, GET /audit."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from relay.models import AuditEntry
from relay.security import audit
from relay.security.auditing import CHANGES, UNAUDITED


def entries(runtime):
    with runtime.sessions() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def hook(url="https://example.org/hook"):
    return {"events": [{"name": "contract_published"}],
            "request": {"method": "POST", "url": url, "username": "u", "password": "hunter2hunter2"}}


def test_changes_are_recorded_with_actor_origin_and_parameters(api, runtime):
    created = api.post("/webhooks", json=hook(), headers={"User-Agent": "probe/1.0"},
                       environ_base={"REMOTE_ADDR": "192.0.2.7"}).json
    api.put(f"/webhooks/{created['uuid']}", json={**hook(), "description": "renamed"})
    api.post("/secrets", json={"name": "Token", "value": "value-of-token", "description": "gh"})
    api.delete("/secrets/Token")
    api.delete(f"/webhooks/{created['uuid']}")
    log = entries(runtime)
    assert [e.type for e in log] == ["webhook.created", "webhook.updated", "secret.created", "secret.deleted",
                                     "webhook.deleted"]
    first = log[0]
    assert (first.actor_type, first.actor_name, first.method, first.path, first.source, first.user_agent) == (
        "token", "test-admin", "POST", "/webhooks", "192.0.2.7", "probe/1.0")
    assert '"password":"**********"' in first.payload and "hunter2" not in first.payload
    assert "value-of-token" not in " ".join(e.payload for e in log)


def test_denials_are_recorded(api, client, runtime):
    client.get("/webhooks")
    client.get("/webhooks", headers={"Authorization": "Bearer prt_not-a-real-token-at-all"})
    api.as_role("read").post("/webhooks", json=hook())
    api.as_role("write").get("/audit")
    log = entries(runtime)
    assert [e.type for e in log] == ["auth.denied"] * 4
    assert [e.actor_name for e in log] == ["", "", "test-read", "test-write"]
    assert "missing bearer token" in log[0].payload and "unknown token" in log[1].payload
    assert '"status":403' in log[2].payload and "prt_not" not in log[1].payload


def test_every_changing_endpoint_has_an_audit_rule(app):
    for rule in app.url_map.iter_rules():
        if rule.methods - {"GET", "HEAD", "OPTIONS"}:
            assert rule.endpoint in CHANGES or rule.endpoint in UNAUDITED, rule.rule


def test_verify_accepts_the_chain_and_names_the_first_tampered_entry(api, runtime, cli):
    for name in ("One", "Two", "Three", "Four"):
        api.post("/secrets", json={"name": name, "value": "v" * 8})
    ok = cli("audit", "verify")
    assert ok.exit_code == 0 and "intact: 4 entries" in ok.output
    victim = entries(runtime)[1]
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET payload = :p WHERE seq = 2"), {"p": '{"name":"Forged"}'})
    broken = cli("audit", "verify")
    assert broken.exit_code == 1 and f"entry 2 ({victim.uuid}" in broken.output
    assert "does not match its hash" in broken.output and len(broken.output.strip().splitlines()) == 1


@pytest.mark.parametrize("relink, broken", [(False, "does not link"), (True, "does not match its hash")],
                         ids=["rehashed", "rehashed-and-relinked"])
def test_a_rehashed_entry_is_found_at_the_next_one(api, runtime, cli, relink, broken):
    """Rehashing a changed entry breaks the next link; fixing that link too breaks the next entry's own hash,
    since each hash covers the link it carries."""
    for name in ("One", "Two", "Three"):
        api.post("/secrets", json={"name": name, "value": "v" * 8})
    with runtime.sessions.begin() as session:
        entry = session.get(AuditEntry, 2)
        entry.actor_name = "someone-else"
        entry.hash = audit.entry_hash(entry)
        if relink:
            session.get(AuditEntry, 3).prev_hash = entry.hash
    result = cli("audit", "verify")
    assert result.exit_code == 1 and "entry 3" in result.output and broken in result.output


def test_removed_entries_are_detected(api, runtime, cli):
    for name in ("One", "Two", "Three"):
        api.post("/secrets", json={"name": name, "value": "v" * 8})
    with runtime.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 3"))
    tail = cli("audit", "verify")
    assert tail.exit_code == 1 and "removed from the end" in tail.output
    with runtime.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 1"))
    head = cli("audit", "verify")
    assert head.exit_code == 1 and "entry 2" in head.output and "removed" in head.output


def test_parallel_appends_never_fork_the_chain(runtime):
    errors = []

    def writer(n):
        try:
            for i in range(8):
                with runtime.sessions.begin() as session:
                    audit.append(session, "test.parallel", audit.Actor("test", f"w{n}"), {"i": i})
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    log = entries(runtime)
    assert [e.seq for e in log] == list(range(1, 65))
    assert all(b.prev_hash == a.hash for a, b in zip(log, log[1:], strict=False))
    with runtime.sessions() as session:
        assert audit.verify(session).ok


def test_get_audit_pages_in_order_with_from_and_next(api, runtime):
    for i in range(5):
        api.post("/secrets", json={"name": f"S{i}", "value": "v" * 8})
    first = api.get("/audit?limit=2").json
    assert [e["payload"]["name"] for e in first["events"]] == ["S0", "S1"]
    event = first["events"][0]
    assert set(event) >= {"uuid", "timestamp", "type", "actor", "payload"}
    assert event["actor"] == {"type": "token", "name": "test-admin"} and event["type"] == "secret.created"
    second = api.get(first["_links"]["next"]["href"].split("localhost", 1)[1]).json
    assert [e["payload"]["name"] for e in second["events"]] == ["S2", "S3"]
    after = api.get(f"/audit?from={second['events'][-1]['uuid']}").json
    assert [e["payload"]["name"] for e in after["events"]] == ["S4"] and "next" not in after["_links"]
    assert api.get("/audit?from=nope").status_code == 400


def test_get_audit_filters(api, client, runtime):
    api.post("/secrets", json={"name": "Kept", "value": "v" * 8})
    client.get("/webhooks")
    api.as_role("write").post("/secrets", json={"name": "ByWriter", "value": "v" * 8})
    assert [e["type"] for e in api.get("/audit?type=auth.denied").json["events"]] == ["auth.denied"]
    assert [e["payload"]["name"] for e in api.get("/audit?actor=test-write").json["events"]] == ["ByWriter"]
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert api.get(f"/audit?since={future.replace('+', '%2B')}").json["events"] == []
    assert len(api.get(f"/audit?until={future.replace('+', '%2B')}").json["events"]) == 3
    assert api.get("/audit?since=yesterday").json["errors"]["since"]


def test_the_api_cannot_change_the_log(api):
    api.post("/secrets", json={"name": "One", "value": "v" * 8})
    uuid = api.get("/audit").json["events"][0]["uuid"]
    for method in ("post", "put", "patch", "delete"):
        assert getattr(api, method)("/audit").status_code == 405
        assert getattr(api, method)(f"/audit/{uuid}").status_code == 404
    assert api.as_role("read").get("/audit").status_code == 403
