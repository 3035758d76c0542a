"""Secrets: names and descriptions listed, values set but never shown, delete."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from sqlalchemy import select

from relay.errors import PayloadError
from relay.models import Secret, Webhook
from relay.security import secrets as vaulted
from relay.templating import references
from relay.web.requests import db, runtime
from relay.web.ui import access
from relay.web.ui.blueprint import bp


def _used_by(session) -> dict[str, list[Webhook]]:
    used: dict[str, list[Webhook]] = {}
    for hook in session.scalars(select(Webhook)):
        for namespace, name in set(references(hook.config)):
            if namespace == "user":
                used.setdefault(name, []).append(hook)
    return used


def _page(status: int = 200, errors: dict | None = None, values: dict | None = None):
    session = db()
    rows = list(session.scalars(select(Secret).order_by(Secret.name)))
    return render_template("secrets.html", secrets=rows, used=_used_by(session), errors=errors or {},
                           values=values or {}, edit=request.args.get("edit", "")), status


@bp.get("/secrets")
@access.login_required("read")
def secrets_list():
    return _page()


@bp.post("/secrets")
@access.login_required("write")
def secret_save():
    name = request.form.get("name", "").strip()
    description = request.form.get("description", "")
    session = db()
    try:
        secret, created = vaulted.save(session, runtime().vault, name, request.form.get("value", ""), description)
    except PayloadError as exc:
        # The value is never sent back to the browser, not even after a mistake.
        session.rollback()
        return _page(400, exc.errors, {"name": name, "description": description})
    access.audit("secret.created" if created else "secret.updated", name=secret.name,
                 description=secret.description)
    session.commit()
    return redirect(url_for("ui.secrets_list", saved=name))


@bp.post("/secrets/<name>/delete")
@access.login_required("write")
def secret_delete(name: str):
    session = db()
    secret = vaulted.find(session, name)
    session.delete(secret)
    access.audit("secret.deleted", name=secret.name)
    session.commit()
    return redirect(url_for("ui.secrets_list", deleted=name))
