"""Writing a benchmark's section of docs/benchmarks.md: ``replace_section`` replaces the section that starts
with the line ``head`` (up to the next ``## `` heading) or appends it."""

from __future__ import annotations

from pathlib import Path


def replace_section(path: Path, head: str, section: str) -> None:
    """``section`` (which starts with ``head``) in place of ``path``'s section under ``head``, or appended."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if head + "\n" in text:
        start = text.index(head + "\n")
        nxt = text.find("\n## ", start + len(head))
        text = text[:start] + section + (text[nxt + 1 :] if nxt != -1 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)
