"""Parameter descriptions from a docstring, in the three common styles:

Google (`Args:` then `name (type): text`), NumPy (`Parameters` / `----------`
then `name : type` and indented text) and Sphinx (`:param name: text`).
"""

from __future__ import annotations

import inspect
import re

_GOOGLE_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params)\s*:\s*$")
_GOOGLE_ITEM = re.compile(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ITEM = re.compile(r"^(\*{0,2}\w+)\s*(:.*)?$")
_SPHINX_ITEM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


def parameter_descriptions(docstring: str | None) -> dict[str, str]:
    """Each documented parameter's description, whitespace collapsed."""
    if not docstring:
        return {}
    lines = inspect.cleandoc(docstring).splitlines()
    found = _sphinx(lines) or _numpy(lines) or _google(lines)
    return {name.lstrip("*"): " ".join(text.split()) for name, text in found.items() if text}


def _sphinx(lines: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    current: str | None = None
    for line in lines:
        match = _SPHINX_ITEM.match(line.strip())
        if match:
            current = match.group(1)
            found[current] = match.group(2)
        elif line.strip().startswith(":") or not line.strip():
            current = None
        elif current is not None:
            found[current] += " " + line.strip()
    return found


def _numpy(lines: list[str]) -> dict[str, str]:
    for index in range(len(lines) - 1):
        if lines[index].strip() in ("Parameters", "Args") and set(lines[index + 1].strip()) == {
            "-"
        }:
            return _items(lines[index + 2 :], _NUMPY_ITEM, numpy=True)
    return {}


def _google(lines: list[str]) -> dict[str, str]:
    for index, line in enumerate(lines):
        if _GOOGLE_SECTION.match(line.strip()):
            return _items(lines[index + 1 :], _GOOGLE_ITEM, numpy=False)
    return {}


def _items(lines: list[str], item: re.Pattern[str], *, numpy: bool) -> dict[str, str]:
    """The entries of a section: each starts at the section's indentation; more indented
    lines continue it; a blank line followed by a less indented one (or a NumPy
    underline) ends the section."""
    found: dict[str, str] = {}
    current: str | None = None
    base: int | None = None
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if base is None:
            base = indent
        if indent < base:
            break
        next_line = lines[index + 1].strip() if index + 1 < len(lines) else ""
        if numpy and next_line and set(next_line) == {"-"}:
            break  # the next section's title
        match = item.match(line.strip()) if indent == base else None
        if match:
            current = match.group(1)
            found[current] = "" if numpy else match.group(3)
        elif indent == base:
            break
        elif current is not None:
            found[current] = (found[current] + " " + line.strip()).strip()
    return found
