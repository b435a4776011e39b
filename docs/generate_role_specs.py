# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write the canary_analysis role's options that are the module's from the module's DOCUMENTATION.

Run from the repository root::

    python docs/generate_role_specs.py          # rewrite those options in the role's argument_specs
    python docs/generate_role_specs.py --check  # exit 1 when they are out of date

The analysis options are declared once, in ``plugins/modules/canary_analysis.py``. The role hands
each option of ``PASSED`` to the module as it is, as ``canary_analysis_<option>``; its spec for
those is derived here: type, elements, choices, sub-options and description from the module, the
default from the role's ``defaults/main.yml``. Two differences are the role's by necessity: an
option whose role default is unset (None, the module's own default then applies) has no
``choices``, since validate_argument_spec refuses None where choices are given (the module still
checks the value); references to module options become references to the role's variables, or
to the module's option when the role has none. The role's own options (the Guance connection,
the rollback, events) are written by hand and kept as they are.
``tests/unit/test_role_specs.py`` fails when the role's file differs from what this script writes.
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
MODULE = REPO_ROOT / "plugins" / "modules" / "canary_analysis.py"
ROLE = REPO_ROOT / "roles" / "canary_analysis"
SPECS = ROLE / "meta" / "argument_specs.yml"
PREFIX = "canary_analysis_"
MODULE_FQCN = "canary.istio.canary_analysis"

# The module options the role passes through unchanged, as canary_analysis_<option>. The others
# reach the module another way: the connection (api, site, url, api_key, ...) as the mapping
# canary_analysis_guance, rollback from canary_analysis_rollback_to, expected_weight from
# canary_analysis_step_weight, the Prometheus credentials from the environment.
PASSED = (
    "provider", "service", "namespace", "canary_version", "baseline_version", "interval", "iterations",
    "threshold", "window", "scrape_interval", "min_requests", "inconclusive", "fail_on_inconclusive",
    "confidence", "checks", "scoring", "detect_error_points", "plan_weights", "metrics", "labels",
    "istio_query_language", "prometheus_url",
)
FIELDS = ("type", "elements", "required", "choices", "no_log")
_OPTION_REF = re.compile(r"O\(([a-z_]+)([^)]*)\)")


def module_options() -> dict:
    """The module's own options, from DOCUMENTATION, read with ``ast`` (nothing is imported)."""
    tree = ast.parse(MODULE.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DOCUMENTATION" for t in node.targets):
            return yaml.safe_load(node.value.value)["options"]
    raise SystemExit(f"{MODULE}: no DOCUMENTATION")


def role_reference(match: re.Match) -> str:
    """``O(interval=0)`` -> ``O(canary_analysis_interval=0)``; an option the role does not pass
    points to the module's: ``O(canary.istio.canary_analysis#module:retry_budget)``."""
    name, rest = match.group(1), match.group(2)
    if name in PASSED:
        return f"O({PREFIX}{name}{rest})"
    return f"O({MODULE_FQCN}#module:{name}{rest})"


def described(text: str | list[str]) -> str | list[str]:
    if isinstance(text, list):
        return [_OPTION_REF.sub(role_reference, line) for line in text]
    return _OPTION_REF.sub(role_reference, text)


def sub_options(options: dict) -> dict:
    """Sub-options as the module documents them; references inside them point to the module."""
    out = {}
    for name, doc in options.items():
        spec = {"description": described(doc["description"])}
        spec.update({key: doc[key] for key in FIELDS if key in doc})
        if "suboptions" in doc:
            spec["options"] = sub_options(doc["suboptions"])
        out[name] = spec
    return out


def role_option(doc: dict, role_default) -> dict:
    spec = {"description": described(doc["description"])}
    spec.update({key: copy.deepcopy(doc[key]) for key in FIELDS if key in doc})
    if role_default is None:
        spec.pop("choices", None)
    else:
        spec["default"] = role_default
    if "suboptions" in doc:
        spec["options"] = sub_options(doc["suboptions"])
    return spec


def generated(current: dict, module: dict, defaults: dict) -> dict:
    """``current`` (the role's argument_specs) with the passed options written from the module,
    in the file's order; a passed option the file lacks goes at the end."""
    out = copy.deepcopy(current)
    options = out["argument_specs"]["main"]["options"]
    for name in PASSED:
        options[PREFIX + name] = role_option(module[name], defaults.get(PREFIX + name))
    return out


class _Dumper(yaml.SafeDumper):
    """Block sequences indented under their key, as the rest of the collection's YAML."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


def render(specs: dict) -> str:
    head = ("---\n# The options canary_analysis_<module option> are written by docs/generate_role_specs.py from\n"
            "# plugins/modules/canary_analysis.py's DOCUMENTATION; edit them there. The others are the role's own.\n")
    text = yaml.dump(specs, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    # The one mapping two options share (the Guance connection's keys): a name that says so.
    return head + re.sub(r"([&*])id001\b", r"\1guance_connection", text)


def expected_text() -> str:
    current = yaml.safe_load(SPECS.read_text(encoding="utf-8"))
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8")) or {}
    return render(generated(current, module_options(), defaults))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the role's file is out of date")
    args = parser.parse_args()
    text = expected_text()
    if SPECS.read_text(encoding="utf-8") == text:
        return 0
    if args.check:
        print(f"{SPECS.relative_to(REPO_ROOT)} is out of date: run python docs/generate_role_specs.py", file=sys.stderr)
        return 1
    SPECS.write_text(text, encoding="utf-8")
    print(f"wrote {SPECS.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
