# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The Istio API version option. Keep in step with ISTIO_API_ARG_SPEC in plugins/module_utils/_istio/api.py.

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  api_version:
    description:
      - API version of the Istio networking objects.
      - V(networking.istio.io/v1) needs Istio 1.22 or later; use V(networking.istio.io/v1beta1) or
        V(networking.istio.io/v1alpha3) for older meshes.
    type: str
    default: networking.istio.io/v1
    choices:
      - networking.istio.io/v1
      - networking.istio.io/v1beta1
      - networking.istio.io/v1alpha3
"""
