# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The notes under each bench's table: their words in bench/notes/<name>.md, their figures in the
bench's result (``figures``). Rendered by bench/publish.py for docs/performance.md and by
bench/_common.py when a bench prints its own result.

A bench writes data only: every number, name or list its notes use goes into ``figures``, and so
does every comparison (a flag such as ``split_reads_above_aim``): a template picks, it does not
decide. bench/notes/<name>.md is a Jinja2 template: a note is a line that starts with ``- ``,
continued on indented lines (joined with a space, so a note can be wrapped); ``{{ figure }}``
prints a figure, ``{% if flag %}`` keeps a note only when a figure says so, and the filters
``pairs`` and ``tuples`` below write lists the way a note reads them. A figure the template names
but the result lacks is an error (StrictUndefined), not an empty word: tests/unit/test_bench_notes.py
renders every template with the published results.

Only jinja2 (which Ansible needs anyway) and the standard library, so the unit test can load this
file without the sandbox.
"""
from __future__ import annotations

from pathlib import Path

import jinja2
import jinja2.meta

NOTES_DIR = Path(__file__).resolve().parent / "notes"


def pairs(items, sep: str = " ") -> str:
    """'a 1, b 2' from {"a": 1, "b": 2} or [["a", 1], ["b", 2]]; ``sep`` goes between name and value."""
    items = items.items() if isinstance(items, dict) else items
    return ", ".join(f"{name}{sep}{value}" for name, value in items)


def tuples(items) -> str:
    """'(1247.8, 100.0), (3.5, 99.1)' from [[1247.8, 100.0], [3.5, 99.1]]: each item as Python writes a tuple."""
    return ", ".join(repr(tuple(item)) for item in items)


def _one_line(value):
    """Each value printed on one line (a message with line breaks, say): a note is one line of the page."""
    return value.replace("\n", " ") if isinstance(value, str) else value


ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(str(NOTES_DIR)), undefined=jinja2.StrictUndefined,
                         trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False,
                         finalize=_one_line)
ENV.filters.update(pairs=pairs, tuples=tuples)


def template_path(name: str) -> Path:
    return NOTES_DIR / f"{name}.md"


def placeholders(name: str) -> set[str]:
    """The figures the template of bench ``name`` uses (in any branch of it)."""
    return jinja2.meta.find_undeclared_variables(ENV.parse(template_path(name).read_text(encoding="utf-8")))


def split_notes(text: str) -> list[str]:
    """Notes from rendered text: a line starting with '- ' begins one, indented lines continue it."""
    notes: list[str] = []
    for line in text.splitlines():
        if line.startswith("- "):
            notes.append(line[2:].strip())
        elif line.strip():
            if not notes or not line[0].isspace():
                raise ValueError(f"a line that is neither a note nor an indented continuation of one: {line!r}")
            notes[-1] = f"{notes[-1].rstrip()} {line.strip()}"
    return notes


def render(name: str, figures: dict) -> list[str]:
    """The notes of bench ``name`` with these figures."""
    return split_notes(ENV.get_template(template_path(name).name).render(**figures))


def notes_of(name: str, result: dict) -> list[str]:
    """The notes of a bench's result. A result written before the notes were templates has no
    figures but its notes as they were rendered then: those are kept, like its other figures."""
    if "figures" not in result and "notes" in result:
        return list(result["notes"])
    return render(name, result.get("figures", {}))
