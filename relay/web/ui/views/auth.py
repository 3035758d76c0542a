"""Sign-in and sign-out, through the security module's rate-limited, audited sessions."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import redirect, render_template, request, url_for

from relay.web.ui import access
from relay.web.ui.blueprint import bp


def safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect after sign-in would hand phishers a trusted link. Judged on what
    # the Location header will carry: printable ASCII only (a tab, CR or LF would be stripped or split later,
    # turning "/\t/evil" into "//evil"), no backslash, no scheme or host.
    if (target and target.startswith("/") and all("!" <= c <= "~" and c != "\\" for c in target)
            and not target.startswith("//")):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("ui.dashboard")


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    if request.method == "GET" and access.viewer():
        return redirect(safe_next(request.args.get("next")))
    error, status, headers = None, 200, {}
    if request.method == "POST":
        try:
            access.sign_in(request.form.get("email", ""), request.form.get("password", ""))
            return redirect(safe_next(request.form.get("next")))
        except access.LoginRefused as refused:
            error, status = refused.message, refused.status
            if refused.retry_after:
                headers["Retry-After"] = str(refused.retry_after)
    return render_template("sign_in.html", error=error, email=request.form.get("email", ""),
                           next=request.values.get("next", ""), **access.sign_in_page()), status, headers


@bp.post("/sign-out")
def sign_out():
    access.sign_out()
    return redirect(url_for("ui.sign_in"))
