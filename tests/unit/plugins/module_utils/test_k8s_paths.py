# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_k8s/paths.py: REST paths of the core kinds, and names that cannot leave their path."""

from __future__ import annotations

import pytest

from ansible_collections.canary.istio.plugins.module_utils._k8s.paths import deployments_path, pods_path, services_path


def test_core_and_apps_paths():
    assert deployments_path("prod") == "/apis/apps/v1/namespaces/prod/deployments"
    assert deployments_path("prod", "reviews-v2") == "/apis/apps/v1/namespaces/prod/deployments/reviews-v2"
    assert pods_path("prod") == "/api/v1/namespaces/prod/pods"
    assert services_path("prod", "reviews") == "/api/v1/namespaces/prod/services/reviews"
    assert services_path("prod") == "/api/v1/namespaces/prod/services"


@pytest.mark.parametrize("bad", ["", "a/b", "..", "."])
def test_names_cannot_escape_their_path(bad):
    with pytest.raises(ValueError, match="name"):
        services_path("prod", bad)
    with pytest.raises(ValueError, match="namespace"):
        pods_path(bad)
