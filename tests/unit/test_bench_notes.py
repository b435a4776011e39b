# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The benches' notes (bench/notes/<name>.md) render with the figures of the published results
(bench/results.json): every name a template uses is a figure of its bench, nothing is left
unfilled, and docs/performance.md carries the notes as they render now.

bench/results/ holds a machine's own runs and is not committed; bench/results.json is what
docs/performance.md was published from, so that is what the templates are held to.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import jinja2
import jinja2.nodes
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "bench"
PUBLISHED = BENCH / "results.json"
PAGE = REPO_ROOT / "docs" / "performance.md"
LEFT_OVER = ("{{", "}}", "{%", "%}", "{#", "#}")

if not (BENCH / "_notes.py").exists():
    pytest.skip("no bench/ in this tree (a built collection leaves it out)", allow_module_level=True)


def _load_notes():
    # By file path: bench/ is not a package on sys.path under `ansible-test units`, and bench/_common.py
    # needs the sandbox; bench/_notes.py needs only jinja2.
    spec = importlib.util.spec_from_file_location("canary_istio_bench_notes", BENCH / "_notes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


notes = _load_notes()
TEMPLATES = sorted(path.stem for path in notes.NOTES_DIR.glob("*.md"))
BENCHES = json.loads(PUBLISHED.read_text(encoding="utf-8"))["benches"]


def figures_of(name: str) -> dict:
    assert "figures" in BENCHES[name], f"bench/results.json: {name} has no figures (published before its notes were templates)"
    return BENCHES[name]["figures"]


def assert_filled(name: str, rendered: list[str]) -> None:
    assert rendered, f"bench/notes/{name}.md renders no note"
    for note in rendered:
        assert note.strip(), f"bench/notes/{name}.md renders an empty note"
        assert not any(mark in note for mark in LEFT_OVER), f"bench/notes/{name}.md left a placeholder: {note}"


def test_every_published_bench_has_a_template_and_every_template_a_bench():
    assert TEMPLATES, notes.NOTES_DIR
    assert set(TEMPLATES) == set(BENCHES)


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_placeholder_is_a_figure_of_the_bench(name):
    missing = notes.placeholders(name) - set(figures_of(name))
    assert not missing, f"bench/notes/{name}.md uses {sorted(missing)}, which bench/results.json's {name} figures lack"


@pytest.mark.parametrize("name", TEMPLATES)
def test_renders_with_the_published_figures_and_nothing_left_unfilled(name):
    assert_filled(name, notes.render(name, figures_of(name)))


def flags(name: str) -> set[str]:
    """The figures a template's ``{% if %}`` tests: notes that are there only when a figure says so."""
    parsed = notes.ENV.parse(notes.template_path(name).read_text(encoding="utf-8"))
    tests = [node.test for node in parsed.find_all(jinja2.nodes.If)]
    return {n.name for test in tests for n in [test, *test.find_all(jinja2.nodes.Name)] if isinstance(n, jinja2.nodes.Name)}


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_flag_renders_either_way(name):
    """A note kept or left out by a flag renders in the other case too (the published run shows one)."""
    figures = figures_of(name)
    for flag in flags(name):
        value = figures[flag]
        flipped = (not value) if isinstance(value, bool) else (0 if value else 1)
        assert_filled(name, notes.render(name, {**figures, flag: flipped}))


def test_a_figure_gone_is_an_error_not_a_blank():
    with pytest.raises(jinja2.UndefinedError):
        notes.ENV.from_string("- median {{ renamed_ms }} ms\n").render(median_ms=1.0)


@pytest.mark.parametrize("name", TEMPLATES)
def test_the_page_has_the_notes_as_they_render(name):
    page = PAGE.read_text(encoding="utf-8").splitlines()
    for note in notes.render(name, figures_of(name)):
        assert f"- {note}" in page, (f"docs/performance.md lacks this note of {name} (after a change to "
                                     f"bench/notes/, run .venv/bin/python -m bench.publish --rerender): {note}")


def test_a_note_wraps_onto_indented_lines():
    assert notes.split_notes("- one\n  two\n\n- three\n") == ["one two", "three"]
    with pytest.raises(ValueError):
        notes.split_notes("- one\ntwo\n")


def test_a_value_with_line_breaks_stays_in_its_note():
    text = notes.ENV.from_string("- failed: {{ failure }}\n- after\n").render(failure="fatal: [sandbox-1]\n- not a note\n")
    assert notes.split_notes(text) == ["failed: fatal: [sandbox-1] - not a note", "after"]


def test_the_list_filters():
    assert notes.pairs({"10": 1, "50": 1}, "%: ") == "10%: 1, 50%: 1"
    assert notes.pairs([["Read the routing", 5], ["Deploy", 2]]) == "Read the routing 5, Deploy 2"
    assert notes.tuples([[1247.8, 100.0]]) == "(1247.8, 100.0)"
    assert notes.tuples([]) == ""
