"""/secrets: write-only values for ${user.NAME}; names and descriptions can be read, values never."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import select

from relay.errors import PayloadError
from relay.models import Secret
from relay.security import secrets
from relay.security.auditing import record
from relay.security.tokens import require
from relay.web.requests import db, json_body, runtime

bp = Blueprint("secrets", __name__)


def to_json(secret: Secret) -> dict:
    return {"name": secret.name, "description": secret.description, "createdAt": secret.created_at.isoformat(),
            "updatedAt": secret.updated_at.isoformat(), "reference": f"${{user.{secret.name}}}"}


def _save(name, doc) -> tuple[Secret, bool]:
    session = db()
    secret, created = secrets.save(session, runtime().vault, name, doc.get("value"), doc.get("description"))
    record(session, "secret.created" if created else "secret.updated", name=secret.name,
           description=secret.description)
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
    secret, created = _save(doc.get("name"), doc)
    return jsonify(to_json(secret)), 201 if created else 200


@bp.put("/secrets/<name>")
@require("write")
def upsert(name: str):
    doc = json_body()
    if not isinstance(doc, dict):
        raise PayloadError.one("body", "must be a JSON object")
    secret, created = _save(name, doc)
    return jsonify(to_json(secret)), 201 if created else 200


@bp.get("/secrets/<name>")
@require("read")
def show(name: str):
    secret = secrets.find(db(), name)
    return jsonify(to_json(secret))


@bp.delete("/secrets/<name>")
@require("write")
def destroy(name: str):
    session = db()
    secret = secrets.find(session, name)
    session.delete(secret)
    record(session, "secret.deleted", name=secret.name)
    session.commit()
    return "", 204
