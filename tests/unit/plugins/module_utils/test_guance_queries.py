# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_guance/queries.py: the series labels in every layout Guance's clients read."""

from __future__ import annotations

from ansible_collections.canary.istio.plugins.module_utils._guance import queries as guance_queries


def test_series_labels_in_every_layout_guances_clients_read() -> None:
    item = {"series": [
        {"name": "istio_prom", "tags": {"destination_version": "v1"}, "columns": ["time", "v"], "values": [[1, 2]]},
        {"labels": {"destination_version": "v2", "response_code": "200"}, "columns": ["time", "v"], "values": [[1, 3]]},
        {"name": ["destination_version=v3", "response_code=503", "odd"], "columns": ["time", "v"], "values": [[1, 4]]},
        {"tags": {"destination_version": "v4"}, "labels": {"destination_version": "x", "le": "+Inf"}, "values": []},
    ]}
    series = guance_queries.simple_series(item)
    assert [s["tags"] for s in series] == [
        {"destination_version": "v1"}, {"destination_version": "v2", "response_code": "200"},
        {"destination_version": "v3", "response_code": "503"}, {"destination_version": "v4", "le": "+Inf"}]
    assert [s["name"] for s in series] == ["istio_prom", "", "", ""]
    assert series[2]["rows"] == [[1, 4]]
