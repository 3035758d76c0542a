"""Administration: API tokens (shown once, revocable), users and the audit log."""

from __future__ import annotations

import secrets

from flask import redirect, render_template, request, url_for
from redis.exceptions import RedisError
from sqlalchemy import select

from relay.errors import NotFound
from relay.models import AuditEntry, Token, User, utcnow
from relay.security import users as people
from relay.security.tokens import ROLES, create_token, revoke_token
from relay.web.requests import db, runtime
from relay.web.ui import access, auditview, once
from relay.web.ui.blueprint import bp

USER_ROLES = ("admin", "write", "read")
AUDIT_PAGE = 50


def _tokens_page(status: int = 200, created: str | None = None, error: str | None = None):
    rows = list(db().scalars(select(Token).order_by(Token.created_at.desc(), Token.id.desc())))
    return render_template("tokens.html", tokens=rows, roles=ROLES, created=created, error=error,
                           now=utcnow(), form_id=secrets.token_urlsafe(16)), status


def _first_submission(form_id: str) -> bool:
    """Whether this rendering of the create form is posted for the first time (a reload posts it again)."""
    if not form_id or len(form_id) > 64:
        return True
    try:
        return bool(runtime().redis.set(f"pact-relay:form:{form_id}", 1, nx=True, ex=86400))
    except RedisError:  # a best-effort guard against reloads; Redis away must not block an admin
        return True


@bp.get("/tokens")
@access.login_required("admin")
def tokens_list():
    return _tokens_page(created=once.take(request.args.get("shown", "")))


@bp.post("/tokens")
@access.login_required("admin")
def token_create():
    if not _first_submission(request.form.get("form_id", "")):
        return _tokens_page(409, error="This form was already sent (a reload?): its token was shown once and is "
                                       "in the list below. Nothing new was created.")
    session = db()
    try:
        token, value = create_token(session, request.form.get("name", ""), request.form.get("role", ""))
    except ValueError as exc:
        return _tokens_page(400, error=str(exc))
    session.flush()
    access.audit("token.created", id=token.id, name=token.name, role=token.role, expiresAt=None)
    session.commit()
    ticket = once.stash(value)
    return redirect(url_for("ui.tokens_list", shown=ticket)) if ticket else _tokens_page(201, created=value)


@bp.post("/tokens/<int:token_id>/revoke")
@access.login_required("admin")
def token_revoke(token_id: int):
    session = db()
    token = session.get(Token, token_id)
    if token is None:
        raise NotFound(f"no token {token_id}")
    if token.revoked_at is None:
        revoke_token(session, token)
        access.audit("token.revoked", id=token.id, name=token.name, role=token.role)
        session.commit()
    return redirect(url_for("ui.tokens_list"))


def _users_page(status: int = 200, error: str | None = None, values: dict | None = None):
    rows = list(db().scalars(select(User).order_by(User.email)))
    return render_template("users.html", users=rows, roles=USER_ROLES, error=error, values=values or {},
                           min_password=people.MIN_PASSWORD), status


@bp.get("/users")
@access.login_required("admin")
def users_list():
    return _users_page()


@bp.post("/users")
@access.login_required("admin")
def user_create():
    session = db()
    email, role = request.form.get("email", ""), request.form.get("role", "")
    try:
        user = people.create_user(session, email, role, request.form.get("password", ""))
    except ValueError as exc:
        session.rollback()
        return _users_page(400, str(exc), {"email": email, "role": role})
    access.audit("user.created", email=user.email, role=user.role)
    session.commit()
    return redirect(url_for("ui.users_list"))


@bp.post("/users/<int:user_id>/disable", defaults={"action": "disable"})
@bp.post("/users/<int:user_id>/enable", defaults={"action": "enable"})
@access.login_required("admin")
def user_toggle(user_id: int, action: str):
    session = db()
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    if action == "disable" and user.disabled_at is None:
        if user.email == access.viewer().name:
            return _users_page(400, "You cannot disable yourself; ask another admin.")
        user.disabled_at = utcnow()
        user.session_epoch += 1  # ends every session of theirs now
        access.audit("user.disabled", email=user.email)
        session.commit()
    elif action == "enable" and user.disabled_at is not None:
        user.disabled_at = None
        access.audit("user.enabled", email=user.email)
        session.commit()
    return redirect(url_for("ui.users_list"))


@bp.post("/users/<int:user_id>/role", defaults={"action": "role"})
@bp.post("/users/<int:user_id>/password", defaults={"action": "password"})
@access.login_required("admin")
def user_change(user_id: int, action: str):
    """An admin changes a user's role or resets their password; either ends that user's sessions."""
    session = db()
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    if action == "role" and user.email == access.viewer().name:
        return _users_page(400, "You cannot change your own role; ask another admin.")
    try:
        if action == "role":
            people.change_role(user, request.form.get("role", ""))
            access.audit("user.role_changed", email=user.email, role=user.role)
        else:
            people.set_password(user, request.form.get("password", ""))
            access.audit("user.password_reset", email=user.email)
    except ValueError as exc:
        session.rollback()
        return _users_page(400, f"{user.email}: {exc}")
    session.commit()
    return redirect(url_for("ui.users_list", changed=user.email))


@bp.get("/audit")
@access.login_required("admin")
def audit_log():
    """Newest first, keyset-paged on the chain position."""
    query = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(AUDIT_PAGE + 1)
    before = request.args.get("before", "")
    if not (before.isascii() and before.isdigit() and len(before) <= 18):
        before = ""  # no page cursor the view made: the newest page
    if before:
        query = query.where(AuditEntry.seq < int(before))
    kind = request.args.get("type", "").strip()
    if kind:  # a prefix: "webhook" finds webhook.created, webhook.updated, ...
        query = query.where(AuditEntry.type.startswith(kind, autoescape=True))
    found = list(db().scalars(query))
    more = len(found) > AUDIT_PAGE
    found = found[:AUDIT_PAGE]
    return render_template("audit.html", entries=auditview.rows(db(), found),
                           older=found[-1].seq if more else None,
                           type=kind, paged=bool(before))
