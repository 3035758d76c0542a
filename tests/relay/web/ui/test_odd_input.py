"""Issue 23 #12: odd cursors and unstorable text in the UI are answered, never a 500."""

import pytest
from sqlalchemy import select

from relay.models import Webhook
from tests.relay.web.ui.test_ui_pages import editor_form


@pytest.mark.parametrize("before", ["%C2%B2", "%EF%BC%91", "9" * 30, "12"])
def test_the_audit_page_takes_only_its_own_cursors(browser, before):
    assert browser.get(f"/ui/audit?before={before}").status_code == 200


@pytest.mark.parametrize("text", ["a\u0000b", "\u0000"])  # a form cannot carry a lone surrogate
@pytest.mark.parametrize("field", ["description", "consumer_value"])
def test_unstorable_text_in_the_webhook_form_is_a_400(browser, runtime, field, text):
    browser.get("/ui/webhooks/new")
    form = editor_form("https://ci.example.com/a", consumer_by="name", **{field: text})
    resp = browser.post("/ui/webhooks/new", form)
    assert resp.status_code == 400
    assert "without NUL characters" in resp.text
    with runtime.sessions() as session:
        assert session.scalars(select(Webhook)).all() == []
