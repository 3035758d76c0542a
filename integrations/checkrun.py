"""GitHub App check runs: the verification and can-i-deploy verdicts, every failing interaction in the summary."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from integrations.base import CAN_I_DEPLOY, failure_of

# https://docs.github.com/en/rest/checks/runs#create-a-check-run: title and summary are limited; counted here in
# UTF-8 bytes, never fewer than GitHub's characters, so a summary of any script stays within it.
SUMMARY_LIMIT = 65535
TITLE_LIMIT = 255
CONCLUSIONS = {"success": "success", "failure": "failure", "error": "neutral"}  # a pending state stays in progress
DEPLOY_CONCLUSIONS = {"yes": "success", "no": "failure"}  # unknown stays in progress: never a pass by default
MARKDOWN = re.compile(r"([\\`*_\[\]<>|~])")  # each line starts with the relay's own words: no block markup


@dataclass(frozen=True)
class CheckRun:
    """One check run to create on every commit of the status."""

    name: str
    status: str  # completed | in_progress
    conclusion: str | None
    title: str
    summary: str
    details_url: str = ""

    def body(self, sha: str) -> dict[str, Any]:
        """The JSON body of POST /repos/{owner}/{repo}/check-runs, as PyGithub sends it."""
        body: dict[str, Any] = {"name": self.name, "head_sha": sha, "status": self.status}
        if self.details_url:
            body["details_url"] = self.details_url
        if self.conclusion:
            body["conclusion"] = self.conclusion
        body["output"] = {"title": self.title, "summary": self.summary}
        return body

    def json(self, sha: str) -> str:
        return json.dumps(self.body(sha))


def md(value: Any) -> str:
    """Text from a verifier or an event, inert in Markdown: one line, no links, emphasis or HTML of its own."""
    return MARKDOWN.sub(r"\\\1", " ".join(str(value).split()))


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def cut(text: str, limit: int) -> str:
    if utf8_len(text) <= limit:
        return text
    return text.encode("utf-8")[: limit - 3].decode("utf-8", "ignore") + "…"


def mismatch_markdown(mismatch: Mapping[str, Any]) -> str:
    where = " ".join(md(mismatch[k]) for k in ("attribute", "path") if mismatch.get(k))
    line = f"- **{where or 'mismatch'}**: {md(mismatch.get('message') or 'differs')}"
    known = [f"{k} {md(mismatch[k])}" for k in ("expected", "actual") if mismatch.get(k) not in (None, "")]
    return line + (f" ({', '.join(known)})" if known else "")


def failure_lines(failing: list[Mapping[str, Any]]) -> list[tuple[str, int, int]]:
    """Markdown lines for every failing interaction and mismatch: (line, interactions, mismatches) it shows."""
    lines: list[tuple[str, int, int]] = []
    for number, interaction in enumerate(failing, 1):
        lines.append((f"\n### {number}. {md(interaction.get('description') or '(no description)')}", 1, 0))
        states = [md(s) for s in interaction.get("providerStates") or []]
        lines.append((f"Provider states: {'; '.join(states) if states else 'none'}", 0, 0))
        lines += [(mismatch_markdown(m), 0, 1) for m in interaction.get("mismatches") or []]
    return lines


def more(interactions: int, mismatches: int) -> str:
    hidden = f", {interactions} interaction{'' if interactions == 1 else 's'} not shown" if interactions else ""
    return (f"\n\n… and {mismatches} more mismatch{'' if mismatches == 1 else 'es'}{hidden}; all of them are on "
            "the pair page and the verification result")


def summary(head: str, failing: list[Mapping[str, Any]], limit: int = SUMMARY_LIMIT) -> str:
    """`head`, then every failing interaction and its mismatches; cut with "… and N more" within `limit`."""
    lines = failure_lines(failing)
    left = [sum(i for _, i, _ in lines), sum(m for _, _, m in lines)]
    text = cut(head, limit // 2)
    for number, (line, interactions, mismatches) in enumerate(lines):
        # Room is kept for the tail whenever lines remain after this one: the cut always says what it left out.
        tail = more(left[0] - interactions, left[1] - mismatches) if number < len(lines) - 1 else ""
        if utf8_len(text + "\n" + line + tail) > limit:
            return text + more(*left)
        text += "\n" + line
        left = [left[0] - interactions, left[1] - mismatches]
    return text


def verification_run(name: str, state: str, description: str, variables: Mapping[str, Any],
                     details_url: str) -> CheckRun:
    """The check run of a verification event: the status's verdict, every failing interaction when known."""
    provider, version = variables.get("providerName", ""), variables.get("providerVersionNumber", "")
    consumer, consumed = variables.get("consumerName", ""), variables.get("consumerVersionNumber", "")
    failure = failure_of(variables) or {}
    failing = list(failure.get("all") or [])
    if state == "failure" and failing:
        count, mismatches = len(failing), sum(len(i.get("mismatches") or []) for i in failing)
        title = f"{count} failing interaction{'s' if count != 1 else ''}, {mismatches} mismatch" \
                f"{'es' if mismatches != 1 else ''}"
    else:
        title = description
    if state == "failure":
        head = f"**{md(provider)} {md(version)}** failed to verify the pact from **{md(consumer)} {md(consumed)}**."
    else:
        head = f"Pact between {md(consumer)} {md(consumed)} and {md(provider)}: {md(description)}"
    verifier = failure.get("verifier") or {}
    if verifier.get("name"):
        head += f"\n\nVerifier: {md(verifier['name'])} {md(verifier.get('version') or '')}".rstrip()
    if failure.get("reason"):
        head += f"\n\nWhy it failed is not known: {md(failure['reason'])}"
    if failure.get("truncated"):
        head += "\n\nThe relay kept the first 50 interactions and 20 mismatches of each."
    return CheckRun(name=name, status="completed" if state in CONCLUSIONS else "in_progress",
                    conclusion=CONCLUSIONS.get(state), title=cut(title, TITLE_LIMIT),
                    summary=summary(head, failing), details_url=details_url)


def deploy_run(name: str, variables: Mapping[str, Any], details_url: str) -> CheckRun | None:
    """The can-i-deploy check run for the broker's answer, None when there is none."""
    found = variables.get(CAN_I_DEPLOY)
    if not isinstance(found, Mapping) or found.get("state") not in ("yes", "no", "unknown"):
        return None
    verdict = {"yes": "Can deploy", "no": "Cannot deploy", "unknown": "Cannot tell yet whether it can deploy"}
    title = f"{verdict[found['state']]} to {found.get('to', '')}"
    reason = str(found.get("reason") or "")
    text = f"{md(title)}\n\n{md(reason)}" if reason else md(title)
    return CheckRun(name=name, status="completed" if found["state"] in DEPLOY_CONCLUSIONS else "in_progress",
                    conclusion=DEPLOY_CONCLUSIONS.get(found["state"]), title=cut(title, TITLE_LIMIT),
                    summary=cut(text, SUMMARY_LIMIT), details_url=details_url)
