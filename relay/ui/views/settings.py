"""Administration: API tokens (shown once, revocable), users and the audit log."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from sqlalchemy import select

from relay.api import db
from relay.auth import ROLES, create_token
from relay.errors import NotFound
from relay.models import Token, utcnow
from relay.ui import access, bp


def _tokens_page(status: int = 200, created: str | None = None, error: str | None = None):
    rows = list(db().scalars(select(Token).order_by(Token.created_at.desc(), Token.id.desc())))
    return render_template("tokens.html", tokens=rows, roles=ROLES, created=created, error=error,
                           now=utcnow()), status


@bp.get("/tokens")
@access.login_required("admin")
def tokens_list():
    return _tokens_page()


@bp.post("/tokens")
@access.login_required("admin")
def token_create():
    session = db()
    try:
        token, value = create_token(session, request.form.get("name", ""), request.form.get("role", ""))
    except ValueError as exc:
        return _tokens_page(400, error=str(exc))
    session.commit()
    access.audit("token.create", str(token.id), name=token.name, role=token.role)
    return _tokens_page(201, created=value)


@bp.post("/tokens/<int:token_id>/revoke")
@access.login_required("admin")
def token_revoke(token_id: int):
    session = db()
    token = session.get(Token, token_id)
    if token is None:
        raise NotFound(f"no token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.commit()
        access.audit("token.revoke", str(token_id), name=token.name)
    return redirect(url_for("ui.tokens_list"))


@bp.get("/users")
@access.login_required("admin")
def users_list():
    return render_template("users.html", users=[])


@bp.get("/audit")
@access.login_required("admin")
def audit_log():
    return render_template("audit.html", entries=[], next_cursor=None)
