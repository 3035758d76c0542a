"""`pact-relay keys`: generate, and rotate every encrypted value under the first key, all or nothing."""

import json

from cryptography.fernet import Fernet
from sqlalchemy import select, text

from relay.models import AuditEntry, Secret, Webhook
from relay.security.secrets import SEALED_PREFIX, Vault
from tests.conftest import TEST_KEYS

HOOK = {"events": [{"name": "contract_published"}],
        "request": {"method": "POST", "url": "https://example.org/hook?k=${user.Alpha}", "username": "u",
                    "password": "literal-password-1", "sign": True,
                    "headers": {"Authorization": "Bearer literal-bearer-2", "X-Api-Key": "literal-key-3",
                                "Accept": "application/json"}}}


def seed(api):
    api.post("/secrets", json={"name": "Alpha", "value": "alpha-value-1"})
    api.post("/secrets", json={"name": "Beta", "value": "beta-value-2"})
    api.post("/webhooks", json=HOOK)


def raw_rows(runtime):
    with runtime.engine.connect() as conn:
        return [tuple(r) for t in ("secrets", "webhooks") for r in conn.execute(text(f"SELECT * FROM {t}"))]


def sealed_values(config):
    if isinstance(config, dict):
        return [v for value in config.values() for v in sealed_values(value)]
    return [config[len(SEALED_PREFIX):]] if isinstance(config, str) and config.startswith(SEALED_PREFIX) else []


def test_generate_prints_a_fernet_key(cli):
    result = cli("keys", "generate")
    assert result.exit_code == 0
    Fernet(result.output.strip())


def test_rotate_reencrypts_secrets_sealed_fields_and_signing_secrets(api, runtime, cli):
    seed(api)
    new = Fernet.generate_key().decode()
    result = cli("keys", "rotate", keys=f"{new},{TEST_KEYS[0]}")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == ("re-encrypted 2 secrets, 3 sealed fields in 1 webhooks and 1 signing secrets "
                                     "under the first key")
    only_new = Vault((new,))
    with runtime.sessions() as session:
        assert sorted(only_new.decrypt(s.ciphertext) for s in session.scalars(select(Secret))) == [
            "alpha-value-1", "beta-value-2"]
        hook = session.scalars(select(Webhook)).one()
        assert sorted(only_new.decrypt(v) for v in sealed_values(hook.config)) == [
            "Bearer literal-bearer-2", "literal-key-3", "literal-password-1"]
        assert only_new.decrypt(hook.signing_secret).startswith("whsec_")
        assert hook.config["headers"]["Accept"] == "application/json"
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
    assert last.type == "keys.rotated" and json.loads(last.payload)["secrets"] == 2 and last.actor_type == "cli"


def test_a_wrong_key_fails_in_one_line_and_changes_nothing(api, runtime, cli):
    seed(api)
    before = raw_rows(runtime)
    unrelated = Fernet.generate_key().decode()
    result = cli("keys", "rotate", keys=unrelated)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "cannot be decrypted" in lines[0] and "nothing was changed" in lines[0]
    assert "Traceback" not in result.output and raw_rows(runtime) == before


def test_a_missing_or_malformed_key_fails_in_one_line(cli):
    missing = cli("keys", "rotate", RELAY_ENCRYPTION_KEYS=None)
    assert missing.exit_code == 1 and "RELAY_ENCRYPTION_KEYS is not set" in missing.output
    malformed = cli("keys", "rotate", keys="not-a-key")
    assert malformed.exit_code == 1 and "Fernet key" in malformed.output
    assert len(malformed.output.strip().splitlines()) == 1


def test_the_relay_still_sends_after_rotation(api, runtime, cli, httpserver):
    api.post("/secrets", json={"name": "Alpha", "value": "alpha-value-1"})
    created = api.post("/webhooks", json={"events": [{"name": "contract_published"}], "request": {
        "method": "POST", "url": httpserver.url_for("/hook"), "headers": {"X-Api-Key": "${user.Alpha}"}}}).json
    new = Fernet.generate_key().decode()
    assert cli("keys", "rotate", keys=f"{new},{TEST_KEYS[0]}").exit_code == 0
    httpserver.expect_request("/hook", headers={"X-Api-Key": "alpha-value-1"}).respond_with_data("ok")
    from relay.app import create_app
    from relay.runtime import Runtime

    rotated = Runtime(runtime.settings.__class__(**{**runtime.settings.__dict__, "encryption_keys": (new,)}))
    app = create_app(runtime=rotated)
    token = api.post("/tokens", json={"name": "t", "role": "write"}).json["token"]
    executed = app.test_client().post(f"/webhooks/{created['uuid']}/execute",
                                      headers={"Authorization": f"Bearer {token}"})
    assert executed.json["success"] is True, executed.json
    rotated.engine.dispose()
