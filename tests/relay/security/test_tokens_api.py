"""/tokens: created once with a name, role and expiry; listed without values; revoked; last use recorded."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from relay.models import Token


def bearer(value):
    return {"Authorization": f"Bearer {value}"}


def test_create_shows_the_value_once_and_stores_only_its_hash(api, client, runtime):
    created = api.post("/tokens", json={"name": "ci", "role": "read", "expiresInDays": 30})
    assert created.status_code == 201
    value = created.json["token"]
    assert value.startswith("prt_") and created.json["role"] == "read" and created.json["expiresAt"]
    assert client.get("/webhooks", headers=bearer(value)).status_code == 200
    listed = api.get("/tokens").json["tokens"]
    assert "ci" in [t["name"] for t in listed] and value not in str(listed)
    assert all("token" not in t and "token_hash" not in t for t in listed)
    shown = api.get(f"/tokens/{created.json['id']}").json
    assert shown["lastUsedAt"] is not None and "token" not in shown
    with runtime.sessions() as session:
        stored = session.scalar(select(Token).where(Token.name == "ci"))
    assert value not in stored.token_hash and len(stored.token_hash) == 64


def test_expiry_is_validated_and_enforced(api, client, runtime):
    assert api.post("/tokens", json={"name": "x", "role": "read", "expiresAt": "2001-01-01T00:00:00Z"}
                    ).json["errors"]["expiresAt"] == ["must be in the future"]
    assert "expiresAt" in api.post("/tokens", json={"name": "x", "role": "read", "expiresAt": "soon"}).json["errors"]
    assert "expiresInDays" in api.post("/tokens", json={"name": "x", "role": "read", "expiresInDays": 0}
                                       ).json["errors"]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = api.post("/tokens", json={"name": "short", "role": "read", "expiresAt": later}).json
    assert client.get("/webhooks", headers=bearer(created["token"])).status_code == 200
    with runtime.sessions.begin() as session:
        session.execute(update(Token).where(Token.id == created["id"])
                        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    expired = client.get("/webhooks", headers=bearer(created["token"]))
    assert expired.status_code == 401 and "expired" in expired.json["error"]
    assert api.get(f"/tokens/{created['id']}").json["expired"] is True


def test_revoke_by_delete_or_post(api, client):
    first = api.post("/tokens", json={"name": "one", "role": "write"}).json
    second = api.post("/tokens", json={"name": "two", "role": "write"}).json
    assert api.delete(f"/tokens/{first['id']}").status_code == 204
    revoked = api.post(f"/tokens/{second['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json["revoked"] and revoked.json["revokedAt"]
    for value in (first["token"], second["token"]):
        denied = client.get("/webhooks", headers=bearer(value))
        assert denied.status_code == 401 and "revoked" in denied.json["error"]
    assert api.delete("/tokens/424242").status_code == 404


def test_bad_input(api):
    bad = api.post("/tokens", json={"name": "", "role": "root"})
    assert bad.status_code == 400 and set(bad.json["errors"]) == {"name", "role"}
    assert api.post("/tokens", data="x", headers={"Content-Type": "text/plain"}).status_code == 415


def test_only_admins_manage_tokens(api):
    for role in ("write", "read", "intake"):
        assert api.as_role(role).post("/tokens", json={"name": "n", "role": "admin"}).status_code == 403
        assert api.as_role(role).get("/tokens").status_code == 403
