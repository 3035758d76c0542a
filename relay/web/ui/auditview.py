"""The audit log as people read it: what each entry is about by name, what changed field by field, sign-ins grouped."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.models import AuditEntry, Webhook

SIGN_INS = ("user.login",)


@dataclass
class Row:
    entry: AuditEntry
    payload: dict[str, Any]
    subject: str = ""  # the webhook's or secret's name, the user's e-mail, ...
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)  # (field, before, after)
    settings: list[tuple[str, Any]] = field(default_factory=list)  # what was created (secret fields masked)
    repeats: list[AuditEntry] = field(default_factory=list)  # the sign-ins folded into this one

    @property
    def details(self) -> list[tuple[str, Any]]:
        return [(k, v) for k, v in self.payload.items() if k not in ("webhook", "uuid")]


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """{"request": {"url": x}} → {"request.url": x}; lists and scalars are leaves."""
    if not isinstance(doc, dict):
        return {prefix: doc}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    return out


def normalised(doc: dict) -> dict:
    """A webhook document as it means: its events are a set, so an order the editor or a client chose is no change."""
    events = doc.get("events")
    if isinstance(events, list):
        names = [e.get("name") if isinstance(e, dict) else e for e in events]
        doc = {**doc, "events": ", ".join(sorted(str(n) for n in names))}
    return doc


def diff(before: dict, after: dict) -> list[tuple[str, Any, Any]]:
    """Changed fields of two masked webhook documents (secret fields are masked in both, so never shown)."""
    old, new = flatten(normalised(before)), flatten(normalised(after))
    return [(k, old.get(k), new.get(k)) for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]


def _previous_doc(session: Session, entry: AuditEntry, uuid: str) -> dict | None:
    """The webhook's document as the entry before this one recorded it."""
    query = (select(AuditEntry.payload).where(AuditEntry.seq < entry.seq,
                                              AuditEntry.type.in_(("webhook.created", "webhook.updated")),
                                              AuditEntry.payload.contains(uuid))
             .order_by(AuditEntry.seq.desc()).limit(1))
    found = session.scalar(query)
    return json.loads(found).get("webhook") if found else None


def rows(session: Session, entries: list[AuditEntry]) -> list[Row]:
    """Page rows, newest first; consecutive sign-ins of one person are one row."""
    payloads = [json.loads(e.payload) for e in entries]
    uuids = {p.get("uuid") for p in payloads if isinstance(p.get("uuid"), str)}
    names = {u: d for u, d in session.execute(select(Webhook.uuid, Webhook.description).where(Webhook.uuid.in_(uuids)))}
    out: list[Row] = []
    for entry, payload in zip(entries, payloads, strict=True):
        last = out[-1] if out else None
        if (entry.type in SIGN_INS and last is not None and last.entry.type == entry.type
                and last.entry.actor_name == entry.actor_name):
            last.repeats.append(entry)
            continue
        row = Row(entry, payload)
        uuid = payload.get("uuid") if isinstance(payload.get("uuid"), str) else ""
        doc = payload.get("webhook") if isinstance(payload.get("webhook"), dict) else {}
        named = payload.get("name") if entry.type.startswith(("secret.", "token.")) else None  # the name people use
        row.subject = (named or doc.get("description") or payload.get("description") or names.get(uuid) or
                       payload.get("name") or payload.get("email") or uuid or "")
        if entry.type == "webhook.created" and doc:
            row.settings = sorted(flatten(normalised(doc)).items())
        if entry.type == "webhook.updated" and doc and uuid:
            before = _previous_doc(session, entry, uuid)
            if before is not None:
                row.changes = diff(before, doc)
        out.append(row)
    return out
