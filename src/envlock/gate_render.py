"""The review gate's section of a diff or an audit, as text, markdown and JSON. Pure.

"Needs attention" comes first: alarms, then what a human must look at before the change
merges, each with the line that accepts it in torchenv.toml once checked; then what was
accepted (and why), then notes. A run that could not check something says so there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from envlock.gate import DEFAULT_COOLDOWN, Finding, Kind, Level, accept_lines, attention
from envlock.spec_review import format_duration

_NAMES = {
    Kind.HASH_DRIFT: "same file, other bytes",
    Kind.STARTUP_HOOK: "start-up hook added",
    Kind.INSTALL_CODE: "code runs at install",
    Kind.FRESH_UPLOAD: "fresh upload",
    Kind.YANKED: "yanked",
    Kind.VULNERABLE: "known vulnerability",
    Kind.UNCHECKED: "not checked",
    Kind.NEW_HOST: "same bytes, new host",
    Kind.RANGE_REFUSED: "whole wheel downloaded",
    Kind.LOCAL_SOURCE: "local source tree",
}
_MD_FLAGS = {Level.ALARM: "🚨", Level.ATTENTION: "⚠️", Level.NOTE: "ℹ️"}  # noqa: RUF001


@dataclass(frozen=True, slots=True, kw_only=True)
class Review:
    """The gate's verdict on one diff (or one lock, for audit)."""

    findings: tuple[Finding, ...] = ()
    checked: int = 0  # artifacts looked at
    cooldown: timedelta | None = DEFAULT_COOLDOWN
    cooldown_from: str = "default"  # or "torchenv.toml"
    ran: bool = True  # False: --no-gate
    notes: tuple[str, ...] = field(default_factory=tuple)  # about the run itself
    # accepts this change adds to torchenv.toml (not in the old side's): a reviewer sees them
    accepted_here: tuple[str, ...] = ()
    scope: str = "new artifact(s)"  # what `checked` counts

    @property
    def attention(self) -> tuple[Finding, ...]:
        return attention(self.findings)

    @property
    def accepted(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.accepted is not None)

    @property
    def info(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level is Level.NOTE)

    @property
    def silent(self) -> bool:
        """Nothing checked and nothing to say (no new artifacts): the section is left out."""
        return not (self.checked or self.findings or self.notes or self.accepted_here)


def _count(findings: Sequence[Finding]) -> str:
    alarms = sum(1 for f in findings if f.level is Level.ALARM)
    return f"{len(findings)}" + (f" ({alarms} alarm{'s' if alarms != 1 else ''})" if alarms else "")


def _who(finding: Finding) -> str:
    return f"{finding.package} {finding.version}".strip()


def _footer(review: Review) -> str:
    line = f"gate: {review.checked} {review.scope} checked"
    if review.cooldown is None:  # audit: uploads are not its question
        return line
    if not review.cooldown:
        return f'{line}; no cooldown (cooldown = "0d")'
    default = (
        " (the default; set [resolution] cooldown)" if review.cooldown_from == "default" else ""
    )
    return f"{line}; cooldown {format_duration(review.cooldown)}{default}"


def text_lines(review: Review) -> list[str]:
    """The section as terminal lines (empty when the gate did not run)."""
    if not review.ran:
        return ["gate: not run (--no-gate): start-up hooks, sdists and uploads not checked"]
    if review.silent:
        return []
    lines: list[str] = []
    pending = review.attention
    if pending:
        lines.append(f"needs attention: {_count(pending)}")
        for finding in pending:
            flag = "ALARM" if finding.level is Level.ALARM else "!"
            lines.append(f"  {flag} {_NAMES[finding.kind]}: {_who(finding)} ({finding.filename})")
            lines.append(f"      {finding.detail}")
        pasted = accept_lines(pending)
        if pasted:
            lines.append("  accept each one after checking it, in torchenv.toml:")
            lines.append("    [review.accept]")
            lines += [f"    {line}" for line in pasted]
    if review.accepted_here:
        lines.append(f"accepted by this change (new in torchenv.toml): {len(review.accepted_here)}")
        lines += [f"  {line}" for line in review.accepted_here]
    if review.accepted:
        lines.append(f"accepted in torchenv.toml: {len(review.accepted)}")
        for finding in review.accepted:
            lines.append(
                f"  {_NAMES[finding.kind]}: {_who(finding)} ({finding.filename}): "
                f"{finding.accepted}"
            )
    if review.info or review.notes:
        lines.append("notes:")
        lines += [f"  {_who(f)}: {_NAMES[f.kind]}: {f.detail}" for f in review.info]
        lines += [f"  {note}" for note in review.notes]
    lines.append(_footer(review) + ("" if pending else "; nothing needs attention"))
    return lines


def _md(text: str) -> str:
    """Text for a table cell of a PR comment: no cell breaks, no HTML, links or mentions
    (a finding quotes a wheel's own text)."""
    for plain, escaped in (
        ("|", "\\|"),
        ("\n", " "),
        ("<", "&lt;"),
        (">", "&gt;"),
        ("[", "\\["),
        ("@", "&#64;"),
    ):
        text = text.replace(plain, escaped)
    return text


def markdown_lines(review: Review) -> list[str]:
    """The section for a PR comment (a GitHub alert box when something needs attention)."""
    if not review.ran:
        return ["> gate not run (`--no-gate`): start-up hooks, sdists and uploads not checked", ""]
    if review.silent:
        return []
    lines: list[str] = []
    pending = review.attention
    if pending:
        alarm = any(f.level is Level.ALARM for f in pending)
        lines += [
            "> [!CAUTION]" if alarm else "> [!WARNING]",
            f"> **Needs attention: {_count(pending)}**: new code that runs at start-up or "
            "install, fresh or yanked uploads, or changed bytes. A human must look before "
            "this merges.",
            "",
            "| | finding | package | file | what |",
            "|---|---|---|---|---|",
        ]
        for finding in pending:
            lines.append(
                f"| {_MD_FLAGS[finding.level]} | {_NAMES[finding.kind]} | {_md(_who(finding))} "
                f"| `{_md(finding.filename)}` | {_md(finding.detail)} |"
            )
        pasted = accept_lines(pending)
        if pasted:
            lines += [
                "",
                "<details><summary>Accept after checking: add to torchenv.toml</summary>",
                "",
                "```toml",
                "[review.accept]",
                *pasted,
                "```",
                "",
                "</details>",
            ]
        lines.append("")
    if review.accepted_here:
        lines += [
            "> [!IMPORTANT]",
            f"> **Accepted by this change** ({len(review.accepted_here)}): torchenv.toml's "
            "[review.accept] gained these; check the reasons.",
            "",
            *[f"- {_md(line)}" for line in review.accepted_here],
            "",
        ]
    extra = [*review.accepted, *review.info]
    if extra or review.notes:
        lines += ["<details><summary>accepted and notes</summary>", ""]
        for finding in review.accepted:
            lines.append(
                f"- accepted: {_NAMES[finding.kind]}, `{_md(_who(finding))}`: "
                f"{_md(finding.accepted or '')}"
            )
        lines += [f"- {_NAMES[f.kind]}, `{_md(_who(f))}`: {_md(f.detail)}" for f in review.info]
        lines += [f"- {_md(note)}" for note in review.notes]
        lines += ["", "</details>", ""]
    lines += [f"_{_footer(review)}_", ""]
    return lines


def review_json(review: Review) -> dict[str, Any]:
    """The "gate" member of diff's (and audit's) JSON document."""
    return {
        "ran": review.ran,
        "needs-attention": [f.to_json() for f in review.attention],
        "accepted": [f.to_json() for f in review.accepted],
        "notes": [f.to_json() for f in review.info],
        "run-notes": list(review.notes),
        "accepted-by-this-change": list(review.accepted_here),
        "accept-lines": list(accept_lines(review.attention)),
        "checked": review.checked,
        "cooldown-seconds": int(review.cooldown.total_seconds()) if review.cooldown else 0,
    }
