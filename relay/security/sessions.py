"""Web UI sign-in: rate-limited login, signed-cookie sessions, CSRF tokens, logout and @login_required."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from datetime import timedelta
from functools import wraps

from flask import Flask, Request, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from relay.models import User, utcnow
from relay.security import sso, users
from relay.security.auditing import record
from relay.security.sso import Identity
from relay.security.tokens import GRANTS, deny

COOKIE = "relay_session"
IDLE = timedelta(hours=2)  # a session unused this long ends (the cookie's signature expires)
ABSOLUTE = timedelta(hours=12)  # and no session outlives this, however busy
MAX_FAILURES = 5
FAILURE_WINDOW = 15 * 60
# Per source address, whatever e-mails it tries: each attempt costs an argon2 hash (about 0.1 s of a core), and a
# new e-mail is a new account budget, so without this one address could buy hashes without end.
MAX_ADDRESS_FAILURES = 20
HASH_WAIT = 2.0  # seconds a sign-in waits for this process's hash slot before a 503
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class LoginRefused(Exception):
    """A sign-in that did not succeed: 401 (wrong e-mail or password), 429 (too many tries), 503."""

    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class HashSlots:
    """At most one password hash at a time per web process (a runtime cache): sign-in load takes one core of a
    process at most, whatever number of addresses it comes from, and leaves the rest to intake."""

    def __init__(self):
        self.slot = threading.BoundedSemaphore(1)


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building a signer for the requests that carry no cookie: every
    API call, the broker's events among them."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    runtime = app.extensions["relay"]
    app.session_interface = CookieSessions()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=runtime.settings.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=IDLE,
        SESSION_REFRESH_EACH_REQUEST=True,
    )


def _db():
    return current_app.extensions["relay.session"]()


def _failures_key(email: str, source: str) -> str:
    # Hashed so Redis never holds the addresses people typed.
    digest = hashlib.sha256(f"{users.normalize_email(email)}|{source}".encode()).hexdigest()
    return f"relay:login-failures:{digest}"


def _address_key(source: str) -> str:
    return "relay:login-address:" + hashlib.sha256(source.encode()).hexdigest()


def _count_attempt(email: str) -> tuple[str, str]:
    """Count this attempt against the account and address, and against the address alone; refuse, before any
    password is hashed, once either budget of the window is spent."""
    redis = current_app.extensions["relay"].redis
    source = request.remote_addr or ""
    key, address = _failures_key(email, source), _address_key(source)
    try:
        # Counting before the password check closes the race where parallel guesses all see a low count.
        pipe = redis.pipeline()
        for name in (key, address):
            pipe.incr(name)
            pipe.expire(name, FAILURE_WINDOW, nx=True)
            pipe.ttl(name)
        attempts, _, ttl, from_address, _, address_ttl = pipe.execute()
    except Exception as exc:
        # Without the counter there is no rate limit, so sign-in waits for Redis (fail closed).
        raise LoginRefused(503, f"sign-in is unavailable (rate limiter unreachable: {type(exc).__name__})",
                           retry_after=30) from None
    if attempts > MAX_FAILURES:
        wait = max(int(ttl), 1)
        raise LoginRefused(429, f"too many failed sign-ins for this account from your address; "
                                f"try again in {(wait + 59) // 60} minutes", retry_after=wait)
    if from_address > MAX_ADDRESS_FAILURES:
        wait = max(int(address_ttl), 1)
        raise LoginRefused(429, f"too many failed sign-ins from your address; try again in {(wait + 59) // 60} "
                                "minutes", retry_after=wait)
    return key, address


def login(email: str, password: str) -> User:
    """Check the credentials, start a fresh session and audit the outcome; raises LoginRefused."""
    db = _db()
    try:
        key, address = _count_attempt(email)
    except LoginRefused as refused:
        if refused.status == 429:
            record(db, "user.login_throttled", email=users.normalize_email(email)[:254])
            db.commit()
        raise
    slot = current_app.extensions["relay"].cache(HashSlots).slot
    if not slot.acquire(timeout=HASH_WAIT):
        raise LoginRefused(503, "sign-in is busy; try again in a moment", retry_after=1)
    try:
        user = users.find_user(db, email)
        matches = users.check_password(user, password)
    finally:
        slot.release()
    if not matches or user.disabled_at is not None:
        db.rollback()
        record(db, "user.login_failed", email=users.normalize_email(email)[:254],
               reason="disabled" if user is not None and user.disabled_at else "wrong e-mail or password")
        db.commit()
        raise LoginRefused(401, "wrong e-mail or password")
    redis = current_app.extensions["relay"].redis
    redis.delete(key)
    redis.decr(address)  # a success is no guess: it gives back what it took of the address's budget
    settings = current_app.extensions["relay"].settings
    if settings.sso_only and not user.break_glass:
        # Told only after the right password, so the message reveals nothing to someone guessing.
        db.rollback()
        record(db, "user.login_failed", email=user.email, reason="password sign-in is off (RELAY_SSO_ONLY)")
        db.commit()
        raise LoginRefused(403, "password sign-in is turned off; use single sign-on")
    users.rehash_if_needed(user, password)
    user.last_login_at = utcnow()
    g.user = user
    record(db, "user.login", email=user.email, role=user.role, provider="password")
    db.commit()
    start_session(user)
    return user


def login_sso(identity: Identity) -> User:
    """Admit the person an identity provider vouched for (role from their groups), start a session that ends
    within RELAY_SSO_SESSION_HOURS and audit the identity behind it; raises SsoRefused."""
    db = _db()
    settings = current_app.extensions["relay"].settings
    user = sso.admit(db, identity, settings)
    g.user = user
    record(db, "user.login", email=user.email, role=user.role, provider=identity.provider, subject=identity.subject,
           **identity.details)
    db.commit()
    start_session(user, expires=int(time.time() + settings.sso_session_hours * 3600))
    return user


def start_session(user: User, expires: int | None = None) -> None:
    """A fresh session for `user`: nothing from before carries over (session fixation), a new CSRF token."""
    session.clear()
    session.permanent = True
    session.update(uid=user.id, epoch=user.session_epoch, iat=int(time.time()), csrf=secrets.token_urlsafe(32))
    if expires is not None:
        session["exp"] = expires


def current_user() -> tuple[User | None, str]:
    """The signed-in user of this request, or None and why not (for the 401 message)."""
    if "user" in g:
        return g.user, ""
    uid = session.get("uid")
    if uid is None:
        if request.cookies.get(COOKIE):
            return None, "your session is invalid or has expired; sign in again"
        return None, "sign in first"
    user = _db().get(User, uid)
    if user is None or user.disabled_at is not None or session.get("epoch") != user.session_epoch:
        session.clear()
        return None, "your session has ended; sign in again"
    now = time.time()
    if now - session.get("iat", 0) > ABSOLUTE.total_seconds() or now > session.get("exp", now):
        session.clear()
        return None, "your session has expired; sign in again"
    g.user = user
    return user, ""


def logout() -> None:
    """End every session of the signed-in user (the epoch bump voids copies of the cookie too)."""
    user, _ = current_user()
    session.clear()
    if user is None:
        return
    db = _db()
    user.session_epoch += 1
    record(db, "user.logout", email=user.email)
    db.commit()


def csrf_token() -> str:
    """The token every form (and every unsafe request) of this session must send back."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(sent: str | None) -> bool:
    expected = session.get("csrf")
    return bool(expected and sent and hmac.compare_digest(expected.encode(), sent.encode()))


def login_required(permission: str | None = None, login_endpoint: str | None = None):
    """Decorator for UI views: a signed-in user whose role grants `permission` (None: any role), and a
    valid CSRF token on unsafe methods. With `login_endpoint`, a GET without a session redirects there."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            user, reason = current_user()
            if user is None:
                if login_endpoint and request.method in SAFE_METHODS:
                    return redirect(url_for(login_endpoint, next=request.full_path.rstrip("?")))
                return deny(401, reason, scheme="")
            if permission is not None and permission not in GRANTS[user.role]:
                return deny(403, f"a {user.role} user may not do this (needs {permission})")
            if request.method not in SAFE_METHODS:
                sent = request.form.get(CSRF_FIELD) if request.form else None
                if not csrf_ok(sent or request.headers.get(CSRF_HEADER)):
                    return deny(403, "missing or wrong CSRF token; reload the page and try again")
            return view(*args, **kwargs)

        wrapper.relay_permission = permission
        wrapper.relay_login = True
        return wrapper

    return decorate
