# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_istio/virtual_service.py: VirtualService specs from typed options."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError
from ansible_collections.canary.istio.plugins.module_utils._istio.traffic import route_weights
from ansible_collections.canary.istio.plugins.module_utils._istio.virtual_service import (
    build_virtual_service_spec,
    drop_none,
    http_route_from_options,
)
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.bookinfo_routes import _catch_all


class TestRouteOptions:
    def test_full_route_options_become_an_istio_route(self):
        opts = {
            "name": "jason",
            "match": [
                {"headers": {"end-user": {"exact": "jason"}}, "uri": {"prefix": "/reviews"}},
                {"headers": {"x-canary": {"regex": "^y"}}, "uri": None, "method": {"exact": "GET"}, "ignore_uri_case": True},
            ],
            "destinations": [
                {"subset": "v1", "weight": 90, "port": 9080, "host": None},
                {"host": "reviews.prod.svc.cluster.local", "subset": "v2", "weight": "10"},
            ],
            "timeout": "10s",
            "retries": {"attempts": 3, "per_try_timeout": "2s", "retry_on": ["5xx", "reset"]},
            "fault": {"delay": {"fixed_delay": "7s", "percentage": 10}, "abort": None},
            "mirror": {"subset": "v3"},
            "mirror_percentage": 12.5,
            "headers": {"request": {"set": {"x-from": "canary"}}},
        }
        assert http_route_from_options(opts, "reviews") == {
            "name": "jason",
            "match": [
                {"headers": {"end-user": {"exact": "jason"}}, "uri": {"prefix": "/reviews"}},
                {"headers": {"x-canary": {"regex": "^y"}}, "method": {"exact": "GET"}, "ignoreUriCase": True},
            ],
            "route": [
                {"destination": {"host": "reviews", "subset": "v1", "port": {"number": 9080}}, "weight": 90},
                {"destination": {"host": "reviews.prod.svc.cluster.local", "subset": "v2"}, "weight": 10},
            ],
            "timeout": "10s",
            "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,reset"},
            "fault": {"delay": {"fixedDelay": "7s", "percentage": {"value": 10}}},
            "mirror": {"host": "reviews", "subset": "v3"},
            "mirrorPercentage": {"value": 12.5},
            "headers": {"request": {"set": {"x-from": "canary"}}},
        }

    def test_minimal_route_omits_every_unset_key(self):
        opts = {"name": None, "match": None, "destinations": [{"subset": "v1"}], "timeout": None, "retries": None,
                "fault": None, "mirror": None, "mirror_percentage": None, "headers": None}
        assert http_route_from_options(opts, "reviews") == {"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}

    @pytest.mark.parametrize(
        "opts, field, fragment",
        [
            ({"destinations": []}, "http.destinations", "at least one destination"),
            ({}, "http.destinations", "at least one destination"),
            ({"destinations": [{"subset": "v1", "weight": 60}, {"subset": "v2", "weight": 30}]}, "http.destinations", "sum to exactly 100"),
            ({"destinations": [{"subset": "v1", "weight": 60}, {"subset": "v2"}]}, "http.destinations", "give each a weight"),
            ({"destinations": [{"subset": "v1", "weight": 50}]}, "http.destinations", "single destination"),
            ({"destinations": [{"subset": "v1", "weight": -5}, {"subset": "v2", "weight": 105}]}, "http.destinations", "negative"),
            ({"destinations": [{"subset": "v1", "weight": 1.5}]}, "http.destinations", "must be an integer"),
            ({"destinations": ["v1"]}, "http.destinations", "must be a dict"),
            ({"destinations": [{"subset": "v1"}], "timeout": "0.5ms"}, "http.timeout", "minimum of 1ms"),
            ({"destinations": [{"subset": "v1"}], "timeout": "10"}, "http.timeout", "no unit"),
            ({"destinations": [{"subset": "v1"}], "retries": {"per_try_timeout": "x"}}, "http.retries.per_try_timeout", "not a duration"),
            ({"destinations": [{"subset": "v1"}], "retries": {"attempts": -1}}, "http.retries.attempts", "negative"),
            ({"destinations": [{"subset": "v1"}], "retries": 3}, "http.retries", "must be a dict"),
            ({"destinations": [{"subset": "v1"}], "fault": {"abort": {"http_status": 700}}}, "http.fault.abort.http_status", "200-599"),
            ({"destinations": [{"subset": "v1"}], "fault": {}}, "http.fault.delay", "at least one"),
            ({"destinations": [{"subset": "v1"}], "mirror_percentage": 150}, "http.mirror_percentage", "between 0.0001 and 100"),
            ({"destinations": [{"subset": "v1"}], "mirror": "v3"}, "http.mirror", "must be a dict"),
            ({"destinations": [{"subset": "v1"}], "match": {"uri": {"exact": "/"}}}, "http.match", "must be a list"),
            ({"destinations": [{"subset": "v1"}], "match": [{"path": {"exact": "/"}}]}, "http.match", "unknown match key 'path'"),
            ({"destinations": [{"subset": "v1"}], "match": [{"uri": {"exact": "/", "prefix": "/"}}]}, "http.match.uri", "exactly one of"),
            ({"destinations": [{"subset": "v1"}], "match": [{"headers": {"a": {"glob": "*"}}}]}, "http.match.headers.a", "unknown match kind"),
            ("route", "http", "must be a dict"),
        ],
    )
    def test_route_option_refusals(self, opts, field, fragment):
        with pytest.raises(IstioSpecError) as err:
            http_route_from_options(opts, "reviews")
        assert err.value.option == field
        assert fragment in err.value.message

    def test_error_fields_take_the_given_prefix(self):
        with pytest.raises(IstioSpecError) as err:
            http_route_from_options({"destinations": [{"subset": "v1"}], "timeout": "x"}, "reviews", field="http[2]")
        assert err.value.option == "http[2].timeout"

    def test_destination_without_any_host_is_refused(self):
        with pytest.raises(IstioSpecError) as err:
            http_route_from_options({"destinations": [{"subset": "v1"}]}, "")
        assert err.value.option == "http.destinations"
        assert "needs a host" in err.value.message

    def test_drop_none_keeps_false_zero_and_empty_values(self):
        assert drop_none({"a": None, "b": False, "c": 0, "d": "", "e": [{"f": None, "g": []}], "h": {}}) == \
            {"b": False, "c": 0, "d": "", "e": [{"g": []}], "h": {}}


class TestWholeSpecs:
    def test_default_subset_on_nothing_makes_one_catch_all(self):
        spec = build_virtual_service_spec(None, ["reviews"], None, None, "v1")
        assert spec == {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}

    def test_default_subset_moves_only_the_catch_all(self, complex_virtual_service):
        before = copy.deepcopy(complex_virtual_service)
        spec = build_virtual_service_spec(complex_virtual_service, before["hosts"], None, None, "v1")
        assert complex_virtual_service == before, "input was mutated"
        assert spec["http"][:3] == before["http"][:3]
        assert spec["http"][3]["route"] == [{k: v for k, v in before["http"][3]["route"][0].items() if k != "weight"}]
        assert {k: v for k, v in spec["http"][3].items() if k != "route"} == {k: v for k, v in before["http"][3].items() if k != "route"}
        assert spec["tcp"] == before["tcp"] and spec["x-vendor-annotation"] == before["x-vendor-annotation"]
        assert spec["gateways"] == before["gateways"]
        assert build_virtual_service_spec(spec, before["hosts"], None, None, "v1") == spec

    def test_default_subset_new_to_the_route_uses_the_first_host(self, complex_virtual_service):
        spec = build_virtual_service_spec(complex_virtual_service, ["reviews"], None, None, "v3")
        assert spec["http"][3]["route"] == [{"destination": {"host": "reviews", "subset": "v3"}}]
        assert route_weights(spec["http"][3]) == {"v3": 100}

    def test_default_subset_already_in_place_is_untouched(self):
        live = {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1", "port": {"number": 9080}}, "weight": 100}]}]}
        assert build_virtual_service_spec(live, ["reviews"], None, None, "v1") == live

    def test_default_subset_appends_a_catch_all_when_there_is_none(self):
        live = {"hosts": ["reviews"], "http": [{"match": [{"uri": {"prefix": "/a"}}], "route": [{"destination": {"host": "reviews", "subset": "v2"}}]}]}
        spec = build_virtual_service_spec(live, ["reviews"], None, None, "v1")
        assert spec["http"] == live["http"] + [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]

    def test_http_routes_replace_the_list_and_other_keys_stay(self, complex_virtual_service):
        routes = [http_route_from_options({"destinations": [{"subset": "v1"}]}, "reviews")]
        spec = build_virtual_service_spec(complex_virtual_service, ["reviews"], ["mesh"], routes, None)
        assert spec["http"] == routes
        assert spec["hosts"] == ["reviews"] and spec["gateways"] == ["mesh"]
        assert spec["tcp"] == complex_virtual_service["tcp"]
        assert spec["exportTo"] == complex_virtual_service["exportTo"]
        routes[0]["name"] = "changed later"
        assert "name" not in spec["http"][0], "routes must be copied"

    @pytest.mark.parametrize(
        "hosts, gateways, http, default_subset, field, fragment",
        [
            ([], None, None, "v1", "hosts", "at least one host"),
            ("reviews", None, None, "v1", "hosts", "at least one host"),
            ([""], None, None, "v1", "hosts", "at least one host"),
            (["reviews"], None, [], "v1", "default_subset", "not both"),
            (["reviews"], None, None, None, "http", "give http routes"),
            (["reviews"], None, None, " ", "default_subset", "must name a subset"),
            (["reviews"], None, {"route": []}, None, "http", "must be a list"),
        ],
    )
    def test_virtual_service_refusals(self, hosts, gateways, http, default_subset, field, fragment):
        with pytest.raises(IstioSpecError) as err:
            build_virtual_service_spec(None, hosts, gateways, http, default_subset)
        assert err.value.option == field
        assert fragment in err.value.message

    def test_default_subset_refuses_a_redirecting_catch_all(self):
        live = {"hosts": ["reviews"], "http": [{"redirect": {"uri": "/v2"}}]}
        with pytest.raises(IstioSpecError) as err:
            build_virtual_service_spec(live, ["reviews"], None, None, "v1")
        assert err.value.option == "default_subset"
        assert "redirect" in err.value.message


class TestBookinfo:
    """On every VirtualService of Istio's bookinfo sample (tests/unit/conftest.py)."""

    def test_default_subset_already_in_place_changes_nothing(self, bookinfo_virtual_service):
        spec = bookinfo_virtual_service["spec"]
        index = _catch_all(spec)
        weights = route_weights(spec["http"][index])
        if len(weights) != 1 or "" in weights:
            pytest.skip("not applicable: the catch-all splits traffic; default_subset would change it")
        assert build_virtual_service_spec(spec, spec["hosts"], None, None, next(iter(weights))) == spec
