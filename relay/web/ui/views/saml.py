"""SAML sign-in: the relay's SP metadata, an AuthnRequest off to the IdP, and its signed answer at the ACS, once."""

from __future__ import annotations

import hashlib
import json

from flask import Response, abort, redirect, request, url_for
from redis.exceptions import RedisError

from relay.web.requests import runtime
from relay.web.ui import access
from relay.web.ui.blueprint import bp
from relay.web.ui.views.auth import safe_next
from relay.web.ui.views.sso import PENDING_TTL, refused


def _provider():
    # Both URLs are built from RELAY_PUBLIC_URL, never from the Host header a client chooses.
    base = runtime().settings.public_url
    return access.saml_provider(base + url_for("ui.saml_metadata"), base + url_for("ui.saml_acs")) or abort(404)


def _request_key(request_id: str) -> str:
    return f"relay:saml-request:{request_id}"


def _assertion_key(idp: str, assertion_id: str) -> str:
    return "relay:saml-assertion:" + hashlib.sha256(f"{idp}\n{assertion_id}".encode()).hexdigest()


@bp.get("/sign-in/saml/metadata")
def saml_metadata():
    try:
        xml = _provider().metadata()
    except access.SsoError as exc:
        return refused(str(exc), 502)
    return Response(xml, mimetype="application/samlmetadata+xml")


@bp.post("/sign-in/saml")
def saml_start():
    provider = _provider()
    try:
        request_id, url = provider.start()
    except access.SsoError as exc:
        return refused(str(exc), 502)
    try:
        runtime().redis.set(_request_key(request_id), json.dumps({"next": safe_next(request.form.get("next"))}),
                            ex=PENDING_TTL)
    except RedisError:
        return refused("sign-in is unavailable (Redis unreachable); try again in a moment", 503)
    return redirect(url, 303)


@bp.post("/sign-in/saml/acs")
def saml_acs():
    provider = _provider()
    answer = request.form.get("SAMLResponse", "")
    try:
        request_id = access.in_response_to(answer)
        kept = runtime().redis.getdel(_request_key(request_id)) if request_id and len(request_id) <= 256 else None
        if request_id and kept is None:
            return refused("this sign-in was not started here, was already used or took too long; sign in again",
                            400)
        result = provider.finish(answer, request_id)
        # Each assertion is taken once, however it came (the request ID is gone after the first use, but an
        # IdP-initiated assertion has none): its ID stays remembered until it would have expired anyway.
        fresh = runtime().redis.set(_assertion_key(result.identity.details["idp"], result.assertion_id), "1",
                                    nx=True, exat=result.expires)
        if not fresh:
            return refused("this sign-in was already used; sign in again", 400)
        access.sign_in_sso(result.identity)
    except RedisError:
        return refused("sign-in is unavailable (Redis unreachable); try again in a moment", 503)
    except access.SsoError as exc:
        return refused(str(exc), 403)
    except access.SsoRefused as exc:
        return refused(str(exc), 403)
    return redirect(safe_next(json.loads(kept)["next"] if kept else None))
