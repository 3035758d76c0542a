"""`pact-relay apply -f relay.yaml`: webhooks, secrets and tokens declared in a file, planned, then applied."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.config import Settings
from relay.errors import PayloadError
from relay.intake import webhooks as hooks
from relay.models import Secret, Token, Webhook
from relay.security.secrets import NAME as SECRET_NAME
from relay.security.secrets import Vault, is_sealed, save
from relay.security.tokens import ROLES, create_token

TOP_LEVEL = {"secrets", "tokens", "webhooks"}


class DeclarationError(ValueError):
    """The file cannot be applied; `problems` lists each one as 'where: what'."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class Change:
    action: str  # add | change | destroy
    kind: str  # secret | token | webhook
    name: str
    apply: Callable[[Session], Any] = field(repr=False, default=lambda session: None)

    def line(self) -> str:
        return f"  {'+~-'['add change destroy'.split().index(self.action)]} {self.kind} {self.name}"


@dataclass
class Plan:
    changes: list[Change]
    created_tokens: dict[str, str] = field(default_factory=dict)

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    def summary(self) -> str:
        return (f"Plan: {self.count('add')} to add, {self.count('change')} to change, "
                f"{self.count('destroy')} to destroy.")


def load(text: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise DeclarationError([f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"]) from None
    doc = {} if doc is None else doc
    if not isinstance(doc, dict):
        raise DeclarationError(["the file must be a mapping with secrets, tokens and webhooks"])
    unknown = sorted(set(doc) - TOP_LEVEL)
    if unknown:
        raise DeclarationError([f"{key}: unknown section (known: secrets, tokens, webhooks)" for key in unknown])
    return doc


def plan(session: Session, settings: Settings, vault: Vault, doc: Mapping[str, Any], env: Mapping[str, str],
         prune: bool = False) -> Plan:
    """Everything that applying `doc` would do; validates all of it first and raises with every problem."""
    problems: list[str] = []
    result = Plan(changes=[])
    declared_secrets = _plan_secrets(session, vault, doc.get("secrets") or {}, env, prune, result, problems)
    _plan_tokens(session, doc.get("tokens") or [], result, problems)
    existing_names = set(session.scalars(select(Secret.name)))
    secret_names = (existing_names if not prune else set()) | declared_secrets
    _plan_webhooks(session, settings, vault, doc.get("webhooks") or [], secret_names, prune, result, problems)
    if problems:
        raise DeclarationError(problems)
    return result


def _plan_secrets(session, vault, secrets, env, prune, result, problems) -> set[str]:
    if not isinstance(secrets, dict):
        problems.append("secrets: must be a mapping of NAME: {env: VARIABLE, description: ...}")
        return set()
    for name, spec in secrets.items():
        where = f"secrets.{name}"
        if not isinstance(name, str) or not SECRET_NAME.fullmatch(name):
            problems.append(f"{where}: names are letters and digits only")
            continue
        if not isinstance(spec, dict) or not isinstance(spec.get("env"), str) or set(spec) - {"env", "description"}:
            problems.append(f"{where}: must be {{env: VARIABLE}} (values come from the environment, never the file)")
            continue
        value = env.get(spec["env"])
        if not value:
            problems.append(f"{where}: environment variable {spec['env']} is not set or empty")
            continue
        description = spec.get("description")
        row = session.get(Secret, name)
        if row is not None and vault.decrypt(row.ciphertext) == value and \
                (description is None or description == row.description):
            continue
        result.changes.append(Change("add" if row is None else "change", "secret", name,
                                     lambda s, n=name, v=value, d=description: save(s, vault, n, v, d)))
    if prune:
        for row in session.scalars(select(Secret).where(Secret.name.not_in(list(secrets)))):
            result.changes.append(Change("destroy", "secret", row.name, lambda s, r=row: s.delete(r)))
    return set(secrets)


def _plan_tokens(session, tokens, result, problems) -> None:
    if not isinstance(tokens, list):
        problems.append("tokens: must be a list of {name, role}")
        return
    for i, spec in enumerate(tokens):
        where = f"tokens[{i}]"
        if not isinstance(spec, dict) or set(spec) - {"name", "role"} or not isinstance(spec.get("name"), str) \
                or spec.get("role") not in ROLES:
            problems.append(f"{where}: must be {{name: ..., role: {'|'.join(ROLES)}}}")
            continue
        live = session.scalars(select(Token).where(Token.name == spec["name"], Token.revoked_at.is_(None))).all()
        if any(t.role == spec["role"] for t in live):
            continue

        def make(s, spec=spec):
            _, value = create_token(s, spec["name"], spec["role"])
            result.created_tokens[spec["name"]] = value

        result.changes.append(Change("add", "token", f"{spec['name']} ({spec['role']})", make))


def _plan_webhooks(session, settings, vault, declared, secret_names, prune, result, problems) -> None:
    if not isinstance(declared, list):
        problems.append("webhooks: must be a list of Pact Broker webhook documents, each with a uuid")
        return
    seen: set[str] = set()
    for i, doc in enumerate(declared):
        uuid = doc.get("uuid") if isinstance(doc, dict) else None
        where = f"webhooks[{i}]"
        if not isinstance(uuid, str) or not hooks.UUID_PATTERN.fullmatch(uuid):
            problems.append(f"{where}.uuid: required, 16 to 100 characters of A-Z, a-z, 0-9, _ and -")
            continue
        if uuid in seen:
            problems.append(f"{where}.uuid: {uuid} is declared twice")
            continue
        seen.add(uuid)
        existing = session.get(Webhook, uuid)
        form = hooks.WebhookInput(settings, vault, secret_names, existing)
        try:
            values = form.parse(doc)
        except PayloadError as exc:
            problems += [f"{where}.{k}: {m}" for k, ms in exc.errors.items() for m in ms]
            continue
        if existing is not None and _same(existing, values, vault):
            continue

        def upsert(s, uuid=uuid, values=values):
            row = s.get(Webhook, uuid) or Webhook(uuid=uuid)
            hooks.apply(row, values)
            s.add(row)

        result.changes.append(Change("add" if existing is None else "change", "webhook",
                                     f"{uuid} ({doc.get('description') or 'no description'})", upsert))
    if prune:
        for row in session.scalars(select(Webhook).where(Webhook.uuid.not_in(list(seen)))):
            result.changes.append(Change("destroy", "webhook", row.uuid, lambda s, r=row: s.delete(r)))


def _same(row: Webhook, values: Mapping[str, Any], vault: Vault) -> bool:
    """Equal once sealed values are opened: sealing the same secret twice gives different ciphertext."""
    def opened(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: opened(v) for k, v in value.items()}
        return vault.unseal(value) if is_sealed(value) else value

    return all(opened(getattr(row, key)) == opened(value) for key, value in values.items()
               if key != "signing_secret") and bool(row.signing_secret) == bool(values.get("signing_secret"))
