"""Log records are masked at creation: known secret values in any spelling, credential shapes, tracebacks."""

import base64
import logging
from urllib.parse import quote_plus

from relay.ops import logredact
from relay.redact import KnownSecrets, Redactor
from relay.security.secrets import Vault
from tests.conftest import TEST_KEYS


def test_values_the_vault_handled_are_masked_in_every_logger(caplog):
    known = KnownSecrets()
    logredact.install(known)
    vault = Vault(TEST_KEYS, known)
    stored = vault.encrypt("vault-handled value/1")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3.connectionpool").debug('"GET /x?k=%s HTTP/1.1" 200',
                                                      quote_plus("vault-handled value/1"))
    logging.getLogger("any.library").warning("got %r", {"value": vault.decrypt(stored)})
    assert "vault-handled" not in caplog.text and caplog.text.count("********") == 2


def test_tracebacks_and_credential_shapes_are_masked(caplog):
    known = KnownSecrets()
    logredact.install(known)
    known.add("traceback-secret-9")
    caplog.set_level(logging.INFO)
    try:
        raise RuntimeError("failed with traceback-secret-9")
    except RuntimeError:
        logging.getLogger("relay.test").exception("boom")
    logging.getLogger("relay.test").info("headers: Authorization: Bearer abcdefghijklmnop, "
                                         "token prt_0123456789abcdefghij, whsec_MTIzNDU2Nzg5MDEyMzQ1Njc4")
    assert "traceback-secret-9" not in caplog.text and "RuntimeError" in caplog.text
    assert "abcdefghijklmnop" not in caplog.text and "prt_0123456789" not in caplog.text
    assert "whsec_MTIz" not in caplog.text and "prt_********" in caplog.text


def test_install_is_idempotent_and_malformed_calls_do_not_raise(caplog):
    logredact.install(KnownSecrets())
    factory = logging.getLogRecordFactory()
    logredact.install(KnownSecrets())
    assert logging.getLogRecordFactory() is factory
    caplog.set_level(logging.INFO)
    logging.getLogger("relay.test").info("%s and %s", "only one")
    assert "only one" in caplog.text


def test_known_secrets_are_bounded():
    known = KnownSecrets(limit=2)
    for value in ("first-value", "second-value", "third-value"):
        known.add(value)
    assert known.text("first-value second-value third-value") == "first-value ******** ********"


def test_redactor_spellings():
    redactor = Redactor(['a/b "c"+d'])
    for spelling in ('a/b "c"+d', "a%2Fb+%22c%22%2Bd", "a/b+%22c%22%2Bd", 'a/b \\"c\\"+d', 'a/b \\\\\\"c\\\\\\"+d',
                     base64.b64encode(b'a/b "c"+d').decode().rstrip("=")):
        assert redactor.text(f"<{spelling}>") == "<********>", spelling
