"""GET /status: every consumer/provider pair with its state, versions, times and links, for dashboards."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, jsonify, request

from relay.errors import PayloadError
from relay.pairs import badgeurls, failures, store
from relay.pairs.state import UNTAGGED, PairState, combine, new_state, status
from relay.security.tokens import require
from relay.web.requests import db, limit_arg, runtime

bp = Blueprint("status", __name__)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def badge_ref(state: PairState) -> badgeurls.BadgeRef:
    c, p, ctag, ptag = state.key
    if ptag:
        return badgeurls.BadgeRef("matrix", c, p, ctag, ptag)
    if ctag == UNTAGGED:
        return badgeurls.BadgeRef("untagged", c, p)
    return badgeurls.BadgeRef("tag", c, p, ctag) if ctag else badgeurls.BadgeRef("latest", c, p)


def badge_link(state: PairState, base: str | None = None) -> str:
    """The badge's URL on RELAY_PUBLIC_URL, or on `base` ("" for a path on whatever host serves the page)."""
    settings = runtime().settings
    key = settings.secret_key if settings.private_badges else None
    return badgeurls.url(settings.public_url if base is None else base, badge_ref(state), key)


def failure_of(state: PairState, known: dict[str, failures.Failure]) -> failures.Failure | None:
    """What is known of why the state's latest verification failed; None for one that did not fail."""
    if state.verification_success is not False:
        return None
    return known.get(state.verification_url) or failures.Failure(
        state.verification_url, failures.PENDING,
        "not read from the Pact Broker yet" if runtime().settings.broker_url else
        "no broker connection: set RELAY_BROKER_URL to see why it failed")


def entry(state: PairState, known: dict[str, failures.Failure] | None = None, full: bool = True) -> dict:
    """One row as JSON; a failed verification carries its failure, with every interaction only when `full` (the
    pair's main row: tag and matrix rows repeat the same result, so they give only its counts)."""
    verification = None
    if state.verification_success is not None:
        verification = {"success": state.verification_success, "sha": state.verification_sha,
                        "number": state.verification_number, "providerVersion": state.provider_version,
                        "providerBranch": state.provider_branch, "consumerVersion": state.verified_consumer_version,
                        "verifiedAt": _time(state.verification_at)}
        failure = failure_of(state, known or {})
        if failure is not None:
            verification["failure"] = failure.to_dict(full)
    links = {"badge": {"href": badge_link(state)}}
    if state.pact_url:
        links["pact"] = {"href": state.pact_url}
    if state.verification_url:
        links["verification"] = {"href": state.verification_url}
    return {
        "state": status(state),
        "pact": {"sha": state.pact_sha, "consumerVersion": state.consumer_version,
                 "consumerBranch": state.consumer_branch, "publishedAt": _time(state.pact_at)} if state.pact_sha
        else None,
        "verification": verification,
        "lastEvent": {"name": state.last_event_name, "at": _time(state.last_event_at)},
        "_links": links,
    }


def pair_json(rows: list[PairState], known: dict[str, failures.Failure] | None = None) -> dict:
    main, rest = rows[0], rows[1:]
    content = {s.consumer_tag: s for s in rest if not s.provider_tag}
    tags = [{"consumerTag": None if s.consumer_tag == UNTAGGED else s.consumer_tag,
             "untagged": s.consumer_tag == UNTAGGED, **entry(s, known, full=False)} for s in content.values()]
    matrix = [{"consumerTag": s.consumer_tag, "providerTag": s.provider_tag,
               **entry(combine(content.get(s.consumer_tag) or new_state(s.key._replace(provider_tag="")), s), known,
                       full=False)}
              for s in rest if s.provider_tag]
    return {"consumer": main.consumer, "provider": main.provider, **entry(main, known), "tags": tags,
            "matrix": matrix}


@bp.get("/status")
@require("read")
def index():
    filters = {}
    for name in ("consumer", "provider"):
        value = request.args.get(name)
        if value is not None and (not 1 <= len(value) <= store.MAX_NAME or "\x00" in value):
            raise PayloadError.one(name, f"must be 1 to {store.MAX_NAME} characters, without NUL")
        filters[name] = value
    session = db()
    groups = store.pairs(session, limit=limit_arg(default=100, maximum=1000), **filters)
    known = failures.read(session, (s.verification_url for rows in groups for s in rows
                                    if s.verification_success is False))
    return jsonify({"pairs": [pair_json(rows, known) for rows in groups]})
