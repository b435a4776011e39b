# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How a module starts and ends: its options parsed (check mode always supported), a blank
required option refused before anything else, then ``run(module)``'s result or its CanaryError.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.canary.istio.plugins.module_utils._errors import exit_from
from ansible_collections.canary.istio.plugins.module_utils._required import fail_on_blank_required


def run_module(
    run: t.Callable[[AnsibleModule], dict[str, t.Any]],
    argument_spec: dict[str, t.Any],
    **rules: t.Any,
) -> t.NoReturn:
    """A module's whole ``main()``. ``rules``: AnsibleModule's ``required_if``,
    ``mutually_exclusive`` and the like."""
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **rules)
    fail_on_blank_required(module, module.argument_spec)
    exit_from(module, run)
