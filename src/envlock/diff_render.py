"""Renderers of a lock diff (pure: a LockDiff in, text or a JSON document out): the terminal
table, the PR comment (markdown) and `envlock diff --format json`. Callers import these names
from ``envlock.diff``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from envlock.diff_model import Change, ChangeKind, LockDiff, RuntimeGroup

if TYPE_CHECKING:
    from envlock.gate_render import Review

_VERBS = {
    ChangeKind.SOURCE_CHANGED: "source changed",
    ChangeKind.INDEX_CHANGED: "index changed",
    ChangeKind.HASH_CHANGED: "hash changed",
    ChangeKind.VARIANT_CHANGED: "build changed",
    ChangeKind.ADDED: "added",
    ChangeKind.REMOVED: "removed",
    ChangeKind.UPGRADED: "upgraded",
    ChangeKind.DOWNGRADED: "downgraded",
    ChangeKind.ARTIFACTS_CHANGED: "files changed",
    ChangeKind.MARKER_CHANGED: "marker changed",
    ChangeKind.REQUIRES_PYTHON_CHANGED: "requires-python changed",
    ChangeKind.ENVIRONMENTS_CHANGED: "environments changed",
    ChangeKind.PLATFORMS_CHANGED: "platforms changed",
    ChangeKind.PYTHON_CHANGED: "python changed",
}


def _arrow(change: Change) -> str:
    if change.old is not None and change.new is not None:
        return f"{change.old} -> {change.new}"
    return change.new or change.old or ""


def _runtime_line(group: RuntimeGroup) -> str:
    cuda = ""
    if group.old_cuda != group.new_cuda:
        cuda = f" {group.old_cuda or 'none'} -> {group.new_cuda or 'none'}"
    elif group.new_cuda:
        cuda = f" {group.new_cuda}"
    count = len(group.changes)
    return f"CUDA runtime{cuda}: {count} package{'s' if count != 1 else ''}"


def headline(diff: LockDiff) -> str:
    if not diff.old_exists and not diff.new_exists:
        return "no lock on either side"
    if not diff.old_exists:
        return "lock added"
    if not diff.new_exists:
        return "lock removed"
    if diff.empty:
        return "no changes"
    parts = [f"{n} {ChangeKind(k).value}" for k, n in diff.counts.items()]
    return ", ".join(parts)


def render_text(diff: LockDiff, *, expand: bool = False, review: Review | None = None) -> str:
    """A terminal table: one change per line, security first; the review gate's section
    (what needs attention) before it when the gate ran."""
    lines = []
    if review is not None:
        from envlock.gate_render import text_lines  # noqa: PLC0415 - only with a review

        section = text_lines(review)
        lines += [*section, ""] if section else []
    lines.append(headline(diff))
    rows: list[tuple[str, str, str, str]] = []
    for change in diff.changes:
        flag = "!" if change.security else " "
        rows.append((flag, _VERBS[change.kind], change.name or "(lock)", _arrow(change)))
        if change.detail and change.kind not in (ChangeKind.ADDED,):
            rows.append((" ", "", "", f"  {change.detail}"))
    if diff.runtime is not None:
        if expand:
            for change in diff.runtime.changes:
                rows.append((" ", _VERBS[change.kind], change.name, _arrow(change)))
        else:
            rows.append((" ", "collapsed", _runtime_line(diff.runtime), "(--expand to list)"))
    if rows:
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for row in rows:
            lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
    return "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(diff: LockDiff, *, expand: bool = False, review: Review | None = None) -> str:
    """A PR comment: headline counts first, then what needs attention (the review gate, when
    it ran), then a table; security changes flagged."""
    lines = [f"### envlock: {headline(diff)}", ""]
    if review is not None:
        from envlock.gate_render import markdown_lines  # noqa: PLC0415 - only with a review

        lines += markdown_lines(review)
    security = [c for c in diff.changes if c.security]
    if security:
        lines += [
            f"> **{len(security)} security-relevant change(s)**: who built a package or "
            "where its files come from changed (build label, host), a package changed index, "
            "or an artifact changed its hash without a version change.",
            "",
        ]
    rows = list(diff.changes)
    if diff.runtime is not None and expand:
        rows += list(diff.runtime.changes)
    if rows or diff.runtime is not None:
        lines += ["| | change | package | old | new |", "|---|---|---|---|---|"]
        for change in rows:
            flag = "⚠️" if change.security else ""
            lines.append(
                f"| {flag} | {_VERBS[change.kind]} | {_md_escape(change.name or '(lock)')} | "
                f"{_md_escape(change.old or '')} | {_md_escape(change.new or '')} |"
            )
        if diff.runtime is not None and not expand:
            lines.append(f"| | collapsed | {_runtime_line(diff.runtime)} | | |")
    details = [c for c in rows if c.detail and c.kind is not ChangeKind.ADDED]
    if details:
        lines += ["", "<details><summary>details</summary>", ""]
        lines += [f"- `{c.name or '(lock)'}`: {_md_escape(c.detail)}" for c in details]
        lines += ["", "</details>"]
    return "\n".join(lines).rstrip() + "\n"


JSON_SCHEMA_VERSION = 1


def diff_json(diff: LockDiff, *, review: Review | None = None) -> dict[str, Any]:
    """The stable JSON document `envlock diff --format json` prints (schema in the README);
    "gate" (the review gate's findings, needs-attention first) when the gate ran."""
    runtime: dict[str, Any] | None = None
    if diff.runtime is not None:
        runtime = {
            "old-cuda": diff.runtime.old_cuda,
            "new-cuda": diff.runtime.new_cuda,
            "changes": [c.to_json() for c in diff.runtime.changes],
        }
    document: dict[str, Any] = {
        "schema": JSON_SCHEMA_VERSION,
        "old-exists": diff.old_exists,
        "new-exists": diff.new_exists,
        "headline": headline(diff),
    }
    if review is not None:
        from envlock.gate_render import review_json  # noqa: PLC0415 - only with a review

        document["gate"] = review_json(review)
    document.update(
        {
            "counts": dict(diff.counts),
            "changes": [c.to_json() for c in diff.changes],
            "cuda-runtime": runtime,
        }
    )
    return document
