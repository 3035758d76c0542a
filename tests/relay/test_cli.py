"""The `pact-relay` command line: badge URLs."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from relay.badgeurls import BadgeRef, parse, verify
from relay.cli import main


def run(tmp_path, *args, **env):
    environ = {"RELAY_DATA_DIR": str(tmp_path), "RELAY_PUBLIC_URL": "https://relay.example.com/", **env}
    return CliRunner().invoke(main, ["badges", "url", *args], env=environ)


def test_public_badge_url(tmp_path):
    result = run(tmp_path, "--consumer", "Matching Service", "--provider", "a/b")
    assert result.exit_code == 0, result.output
    assert result.output == ("https://relay.example.com/pacts/provider/a%2Fb/consumer/Matching%20Service"
                             "/latest/badge.svg\n")
    assert not (tmp_path / "secret.key").exists()


@pytest.mark.parametrize(("args", "ref"), [
    (["--tag", "prod"], BadgeRef("tag", "C", "P", "prod")),
    (["--untagged"], BadgeRef("untagged", "C", "P")),
    (["--tag", "prod", "--provider-tag", "main"], BadgeRef("matrix", "C", "P", "prod", "main")),
])
def test_private_badge_urls_are_signed(tmp_path, args, ref):
    result = run(tmp_path, "--consumer", "C", "--provider", "P", *args, "--label", "provider", "--initials",
                 RELAY_PRIVATE_BADGES="true", RELAY_SECRET_KEY="cli-secret")
    assert result.exit_code == 0, result.output
    url = result.output.strip()
    assert parse(url) == ref and "label=provider&initials=true&sig=" in url and "cli-secret" not in url
    assert verify("cli-secret", ref, url.rsplit("sig=", 1)[1])


@pytest.mark.parametrize(("args", "message"), [
    (["--consumer", "", "--provider", "P"], "--consumer must not be empty"),
    (["--consumer", "C", "--provider", "P", "--provider-tag", "x"], "--provider-tag needs --tag"),
    (["--consumer", "C", "--provider", "P", "--tag", "t", "--untagged"], "exclude each other"),
    (["--consumer", "C" * 300, "--provider", "P"], "at most 255 characters"),
])
def test_bad_options_fail_with_one_line(tmp_path, args, message):
    result = run(tmp_path, *args)
    assert result.exit_code == 1 and message in result.output and result.output.count("\n") == 1
