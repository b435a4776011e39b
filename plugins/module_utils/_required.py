# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Required text options given as empty strings.

Ansible's ``required`` accepts ``""`` (an AWX survey's empty answer, an unset variable rendered
as text). An empty name reaches the API server as a collection path - a LIST where a GET was
meant, or a 405 on a write - after other reads; an empty owner holds a lock for nobody. So every
module refuses them first, naming the option.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import typing as t


def blank_required(spec: t.Mapping[str, t.Mapping[str, t.Any]], params: t.Mapping[str, t.Any]) -> str | None:
    """The first required text option of ``spec`` that ``params`` holds as a blank string, or None."""
    for option, rules in spec.items():
        if rules.get("required") and rules.get("type", "str") in ("str", "path"):
            value = params.get(option)
            if isinstance(value, str) and not value.strip():
                return option
    return None


def fail_on_blank_required(module: t.Any, spec: t.Mapping[str, t.Mapping[str, t.Any]]) -> None:
    """Fails the module, naming the option, when a required text option is blank."""
    option = blank_required(spec, module.params)
    if option is not None:
        module.fail_json(msg="%s: is empty; give a value (an empty string is not one)" % option, option=option)
