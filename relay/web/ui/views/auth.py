"""Sign-in and sign-out, through the security module's rate-limited, audited sessions."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from relay.web.ui import access
from relay.web.ui.blueprint import bp


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect after sign-in would hand phishers a trusted link.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("ui.dashboard")


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    if request.method == "GET" and access.viewer():
        return redirect(_safe_next(request.args.get("next")))
    error, status, headers = None, 200, {}
    if request.method == "POST":
        try:
            access.sign_in(request.form.get("email", ""), request.form.get("password", ""))
            return redirect(_safe_next(request.form.get("next")))
        except access.LoginRefused as refused:
            error, status = refused.message, refused.status
            if refused.retry_after:
                headers["Retry-After"] = str(refused.retry_after)
    return render_template("sign_in.html", error=error, email=request.form.get("email", ""),
                           next=request.values.get("next", "")), status, headers


@bp.post("/sign-out")
def sign_out():
    access.sign_out()
    return redirect(url_for("ui.sign_in"))
