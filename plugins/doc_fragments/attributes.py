# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Attributes of this collection's modules. DOCUMENTATION is for the modules that write to the
# cluster (all in the canary.istio.istio action group); the others are pieces a module combines:
# READ_ONLY for one that only reads, and the action group it is in (ISTIO_GROUP, GUANCE_GROUP).
# Ansible merges the attributes of every fragment a module names. Each fragment is one literal
# string, as ansible-test's yamllint reads them; so the istio group's text stands twice.

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and return the changed status without changing the target.
    support: full
    details:
      - Writes are sent with the API server's dry run (C(dryRun=All)), so admission and validation
        run as for a real write and nothing is stored.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: full
    details:
      - The diff holds the object's C(spec) only, never C(metadata) or C(status).
  idempotent:
    description:
      - When run twice in a row with the same arguments, the second run reports no change and writes nothing.
    support: full
  action_group:
    description: Use C(group/canary.istio.istio) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - canary.istio.istio
    details:
      - The group extends C(kubernetes.core.k8s), so the same C(module_defaults) also reach
        kubernetes.core's k8s modules.
"""

    READ_ONLY = r"""
attributes:
  check_mode:
    description: Can run in check mode and return the changed status without changing the target.
    support: full
    details:
      - This module only reads, and runs the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: N/A
    details:
      - This module never changes anything.
  idempotent:
    description:
      - When run twice in a row with the same arguments, the second run reports no change and writes nothing.
    support: full
"""

    ISTIO_GROUP = r"""
attributes:
  action_group:
    description: Use C(group/canary.istio.istio) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - canary.istio.istio
    details:
      - The group extends C(kubernetes.core.k8s), so the same C(module_defaults) also reach
        kubernetes.core's k8s modules.
"""

    GUANCE_GROUP = r"""
attributes:
  action_group:
    description: Use C(group/canary.istio.guance) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - canary.istio.guance
"""
