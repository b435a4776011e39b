# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release_plan filter: canary_steps read by the collection's one step model, before any change."""

from __future__ import annotations

from ansible_collections.canary.istio.plugins.module_utils._istio.release_steps import release_plan


class FilterModule:
    """canary.istio filters."""

    def filters(self):
        return {"release_plan": release_plan}
