"""Users: argon2id hashes, `pact-relay users create` with a prompted or piped password."""

import pytest
from sqlalchemy import select

from relay.models import User
from relay.security import users


def stored(runtime, email):
    with runtime.sessions() as session:
        return session.scalar(select(User).where(User.email == email))


def test_create_prompts_twice_without_echo(cli, runtime):
    result = cli("users", "create", "Ada@Example.com", "--role", "admin",
                 input="a long enough password\na long enough password\n")
    assert result.exit_code == 0 and "created admin user ada@example.com" in result.output
    assert "a long enough password" not in result.output
    user = stored(runtime, "ada@example.com")
    assert user.role == "admin" and user.password_hash.startswith("$argon2id$")
    assert users.check_password(user, "a long enough password")
    assert not users.check_password(user, "a long enough passwore")


def test_mismatched_prompts_create_nothing(cli, runtime):
    result = cli("users", "create", "ada@example.com", "--role", "read", input="first password!!\nsecond one!!!!\n")
    assert result.exit_code != 0 and stored(runtime, "ada@example.com") is None


def test_password_from_stdin(cli, runtime):
    result = cli("users", "create", "bob@example.com", "--role", "write", "--password-stdin",
                 input="piped password 123\n")
    assert result.exit_code == 0
    assert users.check_password(stored(runtime, "bob@example.com"), "piped password 123")
    listed = cli("users", "list")
    assert "bob@example.com" in listed.output and "$argon2" not in listed.output


@pytest.mark.parametrize("args, stdin, message", [
    (["not-an-email", "--role", "admin"], "long enough password\n", "is not an e-mail address"),
    (["a@example.com", "--role", "admin"], "short\n", "at least 12 characters"),
])
def test_bad_input_is_one_line(cli, args, stdin, message):
    result = cli("users", "create", *args, "--password-stdin", input=stdin)
    assert result.exit_code == 1 and message in result.output and len(result.output.strip().splitlines()) == 1


def test_duplicate_and_bad_role(cli):
    assert cli("users", "create", "a@example.com", "--role", "admin", "--password-stdin",
               input="long enough password\n").exit_code == 0
    again = cli("users", "create", "A@example.com", "--role", "read", "--password-stdin",
                input="long enough password\n")
    assert again.exit_code == 1 and "already exists" in again.output
    assert cli("users", "create", "c@example.com", "--role", "intake", "--password-stdin",
               input="long enough password\n").exit_code == 2


def test_unknown_users_cost_a_hash_too():
    assert users.check_password(None, "anything at all") is False


def test_set_password_ends_sessions(cli, runtime):
    cli("users", "create", "a@example.com", "--role", "admin", "--password-stdin", input="long enough password\n")
    with runtime.sessions.begin() as session:
        user = session.scalar(select(User))
        users.set_password(user, "another long password")
    user = stored(runtime, "a@example.com")
    assert user.session_epoch == 1 and users.check_password(user, "another long password")


def test_disable_blocks_sign_in_and_is_audited(cli, client, runtime):
    cli("users", "create", "a@example.com", "--role", "admin", "--password-stdin", input="long enough password\n")
    assert client.post("/login", json={"email": "a@example.com", "password": "long enough password"}).status_code == 200
    assert cli("users", "disable", "a@example.com").exit_code == 0
    assert client.get("/session").status_code == 401
    assert client.post("/login", json={"email": "a@example.com", "password": "long enough password"}).status_code == 401
    assert cli("users", "disable", "b@example.com").exit_code == 1
    from relay.models import AuditEntry

    with runtime.sessions() as session:
        disabled = session.scalar(select(AuditEntry).where(AuditEntry.type == "user.disabled"))
    assert disabled.actor_type == "cli" and disabled.path.endswith("users disable")
