"""/secrets: write-only values for ${user.NAME}; names and descriptions can be read, values never."""

from __future__ import annotations

import re

from flask import Blueprint, jsonify
from sqlalchemy import select

from relay.api import db, json_body, runtime
from relay.auth import require
from relay.errors import NotFound, PayloadError
from relay.models import Secret, utcnow

bp = Blueprint("secrets", __name__)
NAME = re.compile(r"^[A-Za-z0-9]{1,100}$")
MAX_VALUE = 64 * 1024


def to_json(secret: Secret) -> dict:
    return {"name": secret.name, "description": secret.description, "createdAt": secret.created_at.isoformat(),
            "updatedAt": secret.updated_at.isoformat(), "reference": f"${{user.{secret.name}}}"}


def store(session, name: str, value: str, description: str | None) -> tuple[Secret, bool]:
    errors: dict[str, list[str]] = {}
    if not isinstance(name, str) or not NAME.match(name):
        errors["name"] = ["must be 1 to 100 letters and digits (A-Z, a-z, 0-9)"]
    if not isinstance(value, str) or not value or len(value) > MAX_VALUE:
        errors["value"] = [f"must be a non-empty string of at most {MAX_VALUE // 1024} KiB"]
    if description is not None and (not isinstance(description, str) or len(description) > 1000):
        errors["description"] = ["must be a string of at most 1000 characters"]
    if errors:
        raise PayloadError(errors)
    secret = session.get(Secret, name)
    created = secret is None
    if created:
        secret = Secret(name=name, description=description or "")
        session.add(secret)
    elif description is not None:
        secret.description = description
    secret.ciphertext = runtime().vault.encrypt(value)
    secret.updated_at = utcnow()
    session.commit()
    return secret, created


@bp.get("/secrets")
@require("read")
def index():
    return jsonify({"secrets": [to_json(s) for s in db().scalars(select(Secret).order_by(Secret.name))]})


@bp.post("/secrets")
@require("write")
def create():
    doc = json_body()
    if not isinstance(doc, dict):
        raise PayloadError.one("body", "must be a JSON object")
    secret, created = store(db(), doc.get("name"), doc.get("value"), doc.get("description"))
    return jsonify(to_json(secret)), 201 if created else 200


@bp.put("/secrets/<name>")
@require("write")
def upsert(name: str):
    doc = json_body()
    if not isinstance(doc, dict):
        raise PayloadError.one("body", "must be a JSON object")
    secret, created = store(db(), name, doc.get("value"), doc.get("description"))
    return jsonify(to_json(secret)), 201 if created else 200


@bp.get("/secrets/<name>")
@require("read")
def show(name: str):
    secret = db().get(Secret, name) if NAME.match(name) else None
    if secret is None:
        raise NotFound(f"no secret {name[:100]!r}")
    return jsonify(to_json(secret))


@bp.delete("/secrets/<name>")
@require("write")
def destroy(name: str):
    session = db()
    secret = session.get(Secret, name) if NAME.match(name) else None
    if secret is None:
        raise NotFound(f"no secret {name[:100]!r}")
    session.delete(secret)
    session.commit()
    return "", 204
