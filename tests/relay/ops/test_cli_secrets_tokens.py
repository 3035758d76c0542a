"""`pact-relay secrets set|list|delete` and `tokens create|list|revoke`."""

from sqlalchemy import select

from relay.models import Secret
from relay.security.secrets import Vault
from tests.conftest import TEST_KEYS


def test_set_reads_stdin_and_never_prints_the_value(cli, runtime):
    result = cli("secrets", "set", "GithubToken", "--description", "status token", input="ghp_piped_value\n")
    assert result.exit_code == 0 and "${user.GithubToken}" in result.output and "ghp_piped" not in result.output
    with runtime.sessions() as session:
        secret = session.get(Secret, "GithubToken")
    assert Vault(TEST_KEYS).decrypt(secret.ciphertext) == "ghp_piped_value"
    assert "ghp_piped_value" not in secret.ciphertext and secret.description == "status token"
    again = cli("secrets", "set", "GithubToken", input="second-value")
    assert again.exit_code == 0 and again.output.startswith("updated")
    with runtime.sessions() as session:
        secret = session.get(Secret, "GithubToken")
    assert Vault(TEST_KEYS).decrypt(secret.ciphertext) == "second-value" and secret.description == "status token"


def test_list_and_delete(cli, runtime):
    cli("secrets", "set", "One", "--description", "first", input="value-one")
    listed = cli("secrets", "list")
    assert "One" in listed.output and "first" in listed.output and "value-one" not in listed.output
    assert cli("secrets", "delete", "One").exit_code == 0
    with runtime.sessions() as session:
        assert list(session.scalars(select(Secret))) == []
    missing = cli("secrets", "delete", "One")
    assert missing.exit_code == 1 and "no secret 'One'" in missing.output


def test_bad_name_or_empty_value_is_one_line(cli):
    bad = cli("secrets", "set", "bad-name", input="value")
    assert bad.exit_code == 1 and "name: must be" in bad.output
    empty = cli("secrets", "set", "Empty", input="")
    assert empty.exit_code == 1 and "value: must be" in empty.output


def test_tokens_create_list_revoke(cli, client):
    value = cli("tokens", "create", "--name", "ci", "--role", "read").output.strip()
    assert client.get("/webhooks", headers={"Authorization": f"Bearer {value}"}).status_code == 200
    listed = cli("tokens", "list").output
    assert "ci" in listed and "read" in listed and value not in listed
    token_id = next(line.split()[0] for line in listed.splitlines() if " ci " in line)
    revoked = cli("tokens", "revoke", token_id)
    assert revoked.exit_code == 0 and "revoked token" in revoked.output
    assert client.get("/webhooks", headers={"Authorization": f"Bearer {value}"}).status_code == 401
    assert cli("tokens", "revoke", "999999").exit_code == 1
