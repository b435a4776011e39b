# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""docs/reference/*.md must be what docs/generate_module_docs.py writes from the modules' documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.canary.istio.tests.unit.script_loader import load_script

REPO_ROOT = Path(__file__).resolve().parents[2]
generate_module_docs = load_script("docs/generate_module_docs.py")


def test_every_reference_page_is_up_to_date():
    stale = generate_module_docs.stale_pages()
    assert not stale, "docs/reference is out of date (%s); run: %s" % (", ".join(stale), generate_module_docs.REGENERATE_COMMAND)


def test_every_module_has_a_page():
    modules = sorted(path.stem for path in (REPO_ROOT / "plugins" / "modules").glob("*.py") if not path.name.startswith("_"))
    pages = generate_module_docs.expected_pages()
    assert sorted(name[:-3] for name in pages if name != "README.md") == modules


def test_page_holds_options_suboptions_fragments_examples_and_returns():
    page = generate_module_docs.expected_pages()["release_lock.md"]
    assert "| `owner` | str | **required** |" in page
    assert "default: `3600`" in page  # ttl
    assert "choices: `present`, `absent`" in page  # state
    assert "| `proxy_headers.user_agent` | str | env: `K8S_AUTH_PROXY_HEADERS_USER_AGENT` |" in page  # fragment suboption
    assert "| check_mode | full |" in page  # attributes fragment
    assert "canary.istio.release_lock:" in page  # examples
    assert "| `outcome` | str | always |" in page  # return values


def test_module_own_attributes_win_over_the_fragment(tmp_path):
    fragments = tmp_path / "fragments"
    fragments.mkdir()
    (fragments / "attrs.py").write_text(
        'class ModuleDocFragment:\n    DOCUMENTATION = """\nattributes:\n  check_mode:\n    support: full\n'
        '    description: from the fragment\n  diff_mode:\n    support: none\n    description: d\n'
        'notes:\n  - fragment note\n"""\n', encoding="utf-8")
    documentation = ("module: thing\nshort_description: A thing\nextends_documentation_fragment:\n  - canary.istio.attrs\n"
                     "attributes:\n  check_mode:\n    support: partial\n    description: own\nnotes:\n  - own note\n")
    doc = generate_module_docs.merged_documentation(documentation, fragments)
    assert doc["attributes"]["check_mode"] == {"support": "partial", "description": "own"}
    assert doc["attributes"]["diff_mode"]["support"] == "none"
    assert doc["notes"] == ["own note", "fragment note"]


def test_a_changed_module_makes_its_page_stale(tmp_path):
    modules = tmp_path / "modules"
    modules.mkdir()
    source = (REPO_ROOT / "plugins" / "modules" / "release_lock.py").read_text(encoding="utf-8")
    (modules / "release_lock.py").write_text(source, encoding="utf-8")
    reference = tmp_path / "reference"
    generate_module_docs.write_pages(reference, modules)
    assert not generate_module_docs.stale_pages(reference, modules)
    (modules / "release_lock.py").write_text(source.replace("default: 3600", "default: 60"), encoding="utf-8")
    assert generate_module_docs.stale_pages(reference, modules) == ["release_lock.md"]


@pytest.mark.parametrize("text, markdown", [
    ("C(a) and O(state=absent)", "`a` and `state=absent`"),
    ("B(last) I(now)", "**last** *now*"),
    ("L(Istio, https://istio.io) U(https://x.y)", "[Istio](https://istio.io) <https://x.y>"),
    ("E(GUANCE_URL)  wraps\n  lines", "`GUANCE_URL` wraps lines"),
])
def test_markup(text, markdown):
    assert generate_module_docs.markup(text) == markdown
