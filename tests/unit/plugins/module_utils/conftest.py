# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures the tests of several module_utils files use: a Kubernetes-like API server, and a pair of
HTTP servers where one redirects to the other.

The helpers are imported in the fixtures: pytest may import this file before Ansible's collection
loader is set up (when a test file of this folder is named on the command line).
"""

from __future__ import annotations

import pytest


@pytest.fixture
def api():
    from ansible_collections.canary.istio.tests.unit.plugins.module_utils.k8s_fakes import TOKEN, FakeApiServer

    with FakeApiServer(token=TOKEN) as server:
        yield server


@pytest.fixture()
def redirect_pair():
    """(redirector, target): the redirector answers 307 to the target under another host name
    (``localhost`` rather than ``127.0.0.1``), with a token in the Location's query."""
    from ansible_collections.canary.istio.tests.unit.plugins.module_utils.http_fakes import Recorder

    target = Recorder(200, body=b'{"status": "success", "data": {"resultType": "vector", "result": []}}')
    redirector = Recorder(307, location=f"http://localhost:{target.port}/steal?token=loc-secret-123")
    yield redirector, target
    redirector.close()
    target.close()
