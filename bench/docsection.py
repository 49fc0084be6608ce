"""A benchmark's section of docs/benchmarks.md: the text from the line ``head`` up to the next ``## `` heading.
``replace_section`` replaces it (or appends it); ``section_of`` reads it."""

from __future__ import annotations

from pathlib import Path


def _bounds(text: str, head: str) -> tuple[int, int] | None:
    """Where ``head``'s section starts and ends in ``text`` (the end: the newline before the next ``## ``)."""
    if head + "\n" not in text:
        return None
    start = text.index(head + "\n")
    nxt = text.find("\n## ", start + len(head))
    return start, nxt if nxt != -1 else len(text)


def section_of(text: str, head: str) -> str:
    """``head``'s section of ``text``; ``ValueError`` when there is none."""
    bounds = _bounds(text, head)
    if bounds is None:
        raise ValueError(f"no section {head!r}")
    return text[bounds[0] : bounds[1]]


def replace_section(path: Path, head: str, section: str) -> None:
    """``section`` (which starts with ``head``) in place of ``path``'s section under ``head``, or appended."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    bounds = _bounds(text, head)
    if bounds is not None:
        text = text[: bounds[0]] + section + text[bounds[1] + 1 :]
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)
