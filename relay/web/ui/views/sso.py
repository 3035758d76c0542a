"""Sign-in through an identity provider: off to it with state, nonce and a PKCE challenge, and back, once."""

from __future__ import annotations

import hmac
import json
import secrets

from flask import abort, redirect, render_template, request, session, url_for
from redis.exceptions import RedisError

from relay.web.requests import runtime
from relay.web.ui import access
from relay.web.ui.blueprint import bp
from relay.web.ui.views.auth import safe_next

PENDING_TTL = 600  # seconds a person has at the provider before the sign-in must start again
STATE_KEY = "sso_state"


def _key(state: str) -> str:
    return f"relay:sso-pending:{state}"


def _redirect_uri(provider: str) -> str:
    # Built from RELAY_PUBLIC_URL, never from the Host header a client chooses; the provider checks it exactly.
    return runtime().settings.public_url + url_for("ui.sso_callback", provider=provider)


def refused(message: str, status: int):
    return render_template("sign_in.html", error=message, email="", next="", **access.sign_in_page()), status


@bp.post("/sign-in/<provider>")
def sso_start(provider: str):
    client = access.sso_provider(provider) or abort(404)
    pending = access.Pending(state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32),
                             verifier=secrets.token_urlsafe(64))
    try:
        url = client.start(_redirect_uri(provider), pending)
    except access.SsoError as exc:
        return refused(str(exc), 502)
    kept = {"provider": provider, "nonce": pending.nonce, "verifier": pending.verifier,
            "next": safe_next(request.form.get("next"))}
    try:
        runtime().redis.set(_key(pending.state), json.dumps(kept), ex=PENDING_TTL)
    except RedisError:
        return refused("sign-in is unavailable (Redis unreachable); try again in a moment", 503)
    session[STATE_KEY] = pending.state  # binds the answer to this browser: no one else's sign-in lands here
    return redirect(url, 303)


@bp.get("/sign-in/<provider>/callback")
def sso_callback(provider: str):
    client = access.sso_provider(provider) or abort(404)
    state, expected = request.args.get("state", ""), session.pop(STATE_KEY, None)
    kept = None
    if expected and 0 < len(state) <= 100 and hmac.compare_digest(expected.encode(), state.encode()):
        try:
            kept = runtime().redis.getdel(_key(state))  # taken, so the same answer never signs in twice
        except RedisError:
            return refused("sign-in is unavailable (Redis unreachable); try again in a moment", 503)
    if kept is None:
        return refused("this sign-in was not started in this browser, was already used or took too long; "
                        "sign in again", 400)
    kept = json.loads(kept)
    if kept["provider"] != provider:
        return refused("this sign-in was started with another provider; sign in again", 400)
    if request.args.get("error"):
        code = "".join(c for c in request.args["error"][:60] if c.isalnum() or c in "_-")
        return refused(f"the identity provider did not sign you in ({code})", 403)
    try:
        identity = client.finish(_redirect_uri(provider), request.args.get("code", ""),
                                 access.Pending(state, kept["nonce"], kept["verifier"]))
        access.sign_in_sso(identity)
    except access.SsoError as exc:
        return refused(str(exc), 502)
    except access.SsoRefused as exc:
        return refused(str(exc), 403)
    return redirect(safe_next(kept["next"]))
