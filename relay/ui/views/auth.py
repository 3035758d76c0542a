"""Sign-in and sign-out."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from relay.ui import access, bp


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect after sign-in would hand phishers a trusted link.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("ui.dashboard")


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    error = None
    if request.method == "POST":
        if access.sign_in(request.form.get("token", "")):
            return redirect(_safe_next(request.form.get("next")))
        error = "That token is not valid, has expired, was revoked, or may not sign in (intake tokens cannot)."
    elif access.viewer():
        return redirect(_safe_next(request.args.get("next")))
    status = 401 if error else 200
    return render_template("sign_in.html", error=error, next=request.values.get("next", "")), status


@bp.post("/sign-out")
def sign_out():
    access.sign_out()
    return redirect(url_for("ui.sign_in"))
