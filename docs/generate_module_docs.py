# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write ``docs/reference/<module>.md`` from each module's DOCUMENTATION, EXAMPLES and RETURN.

Run from the repository root::

    python docs/generate_module_docs.py          # write the pages
    python docs/generate_module_docs.py --check  # exit 1 when a page is out of date

The strings are read with ``ast`` (the modules are never imported, so Ansible is not needed) and
their documentation fragments (``extends_documentation_fragment``) are merged as Ansible merges
them: the module's own options and attributes win over the fragment's, notes add up.
``tests/unit/test_module_docs.py`` fails when a page differs from what this script writes.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
MODULES_DIR = REPO_ROOT / "plugins" / "modules"
FRAGMENTS_DIR = REPO_ROOT / "plugins" / "doc_fragments"
REFERENCE_DIR = REPO_ROOT / "docs" / "reference"
COLLECTION = "canary.istio"
REGENERATE_COMMAND = ".venv/bin/python docs/generate_module_docs.py"

# Ansible's documentation markup, as Markdown. Order matters: L() and U() before the one-argument forms.
_MARKUP = [
    (re.compile(r"L\(([^,)]+),\s*([^)]+)\)"), r"[\1](\2)"),
    (re.compile(r"U\(([^)]+)\)"), r"<\1>"),
    (re.compile(r"B\(([^)]+)\)"), r"**\1**"),
    (re.compile(r"I\(([^)]+)\)"), r"*\1*"),
    (re.compile(r"\b(?:C|V|O|E|M|RV|P)\(([^()]*(?:\([^()]*\)[^()]*)*)\)"), r"`\1`"),
    (re.compile(r"HORIZONTALLINE"), "---"),
]


def module_strings(path: Path) -> dict[str, str]:
    """The module-level string constants DOCUMENTATION, EXAMPLES and RETURN of a module file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
                    found[target.id] = node.value.value
    return found


def fragment_doc(name: str, fragments_dir: Path = FRAGMENTS_DIR) -> dict:
    """The parsed YAML of a fragment named ``canary.istio.<file>[.<ATTRIBUTE>]``."""
    parts = name.split(".")
    if parts[:2] != COLLECTION.split("."):
        raise ValueError("documentation fragment %r is not part of %s" % (name, COLLECTION))
    file_name = parts[2]
    attribute = parts[3] if len(parts) > 3 else "DOCUMENTATION"
    tree = ast.parse((fragments_dir / (file_name + ".py")).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "ModuleDocFragment":
            for item in node.body:
                if isinstance(item, ast.Assign) and any(isinstance(t, ast.Name) and t.id == attribute for t in item.targets):
                    return yaml.safe_load(item.value.value) or {}
    raise ValueError("documentation fragment %r: no %s in %s.py" % (name, attribute, file_name))


def merged_documentation(text: str, fragments_dir: Path = FRAGMENTS_DIR) -> dict:
    """DOCUMENTATION with its fragments merged in: the module's own keys win, lists add up."""
    doc = yaml.safe_load(text) or {}
    for name in doc.pop("extends_documentation_fragment", None) or []:
        for key, value in fragment_doc(name, fragments_dir).items():
            if key not in doc:
                doc[key] = value
            elif isinstance(value, dict):
                doc[key] = dict(value, **doc[key])
            elif isinstance(value, list):
                doc[key] = list(doc[key]) + [entry for entry in value if entry not in doc[key]]
    return doc


def markup(text) -> str:
    """Ansible markup (C(), O(), V(), E(), B(), I(), L(), U()) as Markdown, on one line."""
    text = " ".join(str(text).split())
    for pattern, replacement in _MARKUP:
        text = pattern.sub(replacement, text)
    return text


def _paragraphs(value) -> list[str]:
    if value is None:
        return []
    return [markup(entry) for entry in (value if isinstance(value, list) else [value])]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _inline_yaml(value) -> str:
    dumped = yaml.safe_dump(value, default_flow_style=True, width=10000).strip()
    return dumped[:-4].strip() if dumped.endswith("\n...") else dumped.removesuffix("...").strip()


def _type_text(spec: dict) -> str:
    kind = spec.get("type", "str")
    if spec.get("elements"):
        kind += " of " + spec["elements"]
    return kind


def _option_rows(options: dict, prefix: str = "") -> list[str]:
    rows = []
    for name in sorted(options):
        spec = options[name] or {}
        details = []
        if spec.get("required"):
            details.append("**required**")
        if "default" in spec and spec["default"] is not None:
            details.append("default: `%s`" % _inline_yaml(spec["default"]))
        if spec.get("choices"):
            details.append("choices: " + ", ".join("`%s`" % _inline_yaml(choice) for choice in spec["choices"]))
        if spec.get("aliases"):
            details.append("aliases: " + ", ".join("`%s`" % alias for alias in spec["aliases"]))
        env = _env_fallbacks(spec)
        if env:
            details.append("env: " + ", ".join("`%s`" % variable for variable in env))
        description = "<br>".join(_paragraphs(spec.get("description")))
        rows.append("| `%s%s` | %s | %s | %s |" % (prefix, name, _type_text(spec), "<br>".join(details), _cell(description)))
        if spec.get("suboptions"):
            rows.extend(_option_rows(spec["suboptions"], prefix + name + "."))
    return rows


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _env_fallbacks(spec: dict) -> list[str]:
    """Environment variables named in the option's "Can also be set with E(...)" sentence."""
    lines = [str(line) for line in _as_list(spec.get("description")) if "can also be set with" in str(line).lower()]
    return [variable for line in lines for variable in re.findall(r"E\(([A-Z0-9_]+)\)", line)]


def _return_rows(values: dict, prefix: str = "") -> list[str]:
    rows = []
    for name in sorted(values):
        spec = values[name] or {}
        sample = ""
        if "sample" in spec:
            sample = "<br>sample: `%s`" % _cell(_inline_yaml(spec["sample"]))
        description = "<br>".join(_paragraphs(spec.get("description")))
        returned = _cell(markup(spec.get("returned", "")))
        rows.append("| `%s%s` | %s | %s | %s%s |" % (prefix, name, _type_text(spec), returned, _cell(description), sample))
        if spec.get("contains"):
            rows.extend(_return_rows(spec["contains"], prefix + name + "."))
    return rows


def render(module_name: str, strings: dict[str, str], fragments_dir: Path = FRAGMENTS_DIR) -> str:
    """The Markdown reference page of one module."""
    doc = merged_documentation(strings.get("DOCUMENTATION", ""), fragments_dir)
    lines = [
        "<!-- Generated by docs/generate_module_docs.py from plugins/modules/%s.py; do not edit. -->" % module_name,
        "# %s.%s" % (COLLECTION, module_name),
        "",
        markup(doc.get("short_description", "")),
        "",
    ]
    if doc.get("version_added"):
        lines += ["Added in version %s." % doc["version_added"], ""]
    behaviour = REPO_ROOT / "docs" / ("module_%s.md" % module_name)
    if behaviour.exists():
        lines += ["How it behaves, with worked examples: [module_%s.md](../module_%s.md)." % (module_name, module_name), ""]
    lines += ["## Synopsis", ""] + ["- " + paragraph for paragraph in _paragraphs(doc.get("description"))] + [""]
    if doc.get("requirements"):
        lines += ["## Requirements", ""] + ["- " + paragraph for paragraph in _paragraphs(doc["requirements"])] + [""]
    if doc.get("options"):
        lines += ["## Options", "",
                  "Suboptions are written `parent.child`.", "",
                  "| Option | Type | Required / default / choices / env | Description |",
                  "| --- | --- | --- | --- |"]
        lines += _option_rows(doc["options"]) + [""]
    if doc.get("attributes"):
        lines += ["## Attributes", "", "| Attribute | Support | Description |", "| --- | --- | --- |"]
        for name in sorted(doc["attributes"]):
            spec = doc["attributes"][name]
            text = _paragraphs(spec.get("description")) + _paragraphs(spec.get("details"))
            if spec.get("membership"):
                text.append("Action group: " + ", ".join("`%s`" % group for group in spec["membership"]))
            lines.append("| %s | %s | %s |" % (name, spec.get("support", ""), _cell("<br>".join(text))))
        lines.append("")
    if doc.get("notes"):
        lines += ["## Notes", ""] + ["- " + paragraph for paragraph in _paragraphs(doc["notes"])] + [""]
    if doc.get("seealso"):
        lines += ["## See also", ""]
        for entry in doc["seealso"]:
            if "module" in entry:
                target = entry["module"]
                link = target.rsplit(".", 1)[-1] + ".md" if target.startswith(COLLECTION + ".") else None
                text = "[%s](%s)" % (target, link) if link else "`%s`" % target
                lines.append("- " + text + (" — " + markup(entry["description"]) if entry.get("description") else ""))
            elif "link" in entry:
                lines.append("- [%s](%s)" % (markup(entry.get("name", entry["link"])), entry["link"])
                             + (" — " + markup(entry["description"]) if entry.get("description") else ""))
            elif "ref" in entry:
                lines.append("- %s (%s)" % (markup(entry.get("name", entry["ref"])), entry["ref"]))
        lines.append("")
    if strings.get("EXAMPLES", "").strip():
        lines += ["## Examples", "", "```yaml", strings["EXAMPLES"].strip("\n"), "```", ""]
    returns = yaml.safe_load(strings.get("RETURN", "")) or {}
    if returns:
        lines += ["## Return values", "", "Nested values are written `parent.child`.", "",
                  "| Key | Type | Returned | Description |", "| --- | --- | --- | --- |"]
        lines += _return_rows(returns) + [""]
    if doc.get("author"):
        lines += ["## Authors", ""] + ["- " + re.sub(r"\s*\(!UNKNOWN\)", "", str(author)) for author in _as_list(doc["author"])] + [""]
    return "\n".join(lines)


def expected_pages(modules_dir: Path = MODULES_DIR, fragments_dir: Path = FRAGMENTS_DIR) -> dict[str, str]:
    """File name -> content of every reference page, plus the index ``README.md``."""
    pages = {}
    index = ["<!-- Generated by docs/generate_module_docs.py; do not edit. -->",
             "# Module reference", "",
             "Every option, attribute, example and return value of each module, generated from its "
             "documentation (`%s` rewrites these pages)." % REGENERATE_COMMAND, ""]
    for path in sorted(modules_dir.glob("*.py")):
        if path.name.startswith("_"):
            continue
        strings = module_strings(path)
        if "DOCUMENTATION" not in strings:
            continue
        name = path.stem
        pages[name + ".md"] = render(name, strings, fragments_dir)
        short = markup((yaml.safe_load(strings["DOCUMENTATION"]) or {}).get("short_description", ""))
        index.append("- [%s.%s](%s.md) — %s" % (COLLECTION, name, name, short))
    pages["README.md"] = "\n".join(index) + "\n"
    return pages


def stale_pages(reference_dir: Path = REFERENCE_DIR, modules_dir: Path = MODULES_DIR) -> list[str]:
    """Names of pages that are missing, differ from what would be written, or belong to no module."""
    expected = expected_pages(modules_dir)
    stale = [name for name, text in sorted(expected.items())
             if not (reference_dir / name).exists() or (reference_dir / name).read_text(encoding="utf-8") != text]
    stale += sorted(path.name for path in reference_dir.glob("*.md") if path.name not in expected)
    return stale


def write_pages(reference_dir: Path = REFERENCE_DIR, modules_dir: Path = MODULES_DIR) -> list[str]:
    """Write every page, remove pages of modules that are gone; return the names written."""
    expected = expected_pages(modules_dir)
    reference_dir.mkdir(parents=True, exist_ok=True)
    for path in reference_dir.glob("*.md"):
        if path.name not in expected:
            path.unlink()
    for name, text in expected.items():
        (reference_dir / name).write_text(text, encoding="utf-8")
    return sorted(expected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report pages that are out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_pages()
        for name in stale:
            print("out of date: docs/reference/%s" % name)
        if stale:
            print("run: %s" % REGENERATE_COMMAND)
        return 1 if stale else 0
    for name in write_pages():
        print("wrote docs/reference/%s" % name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
