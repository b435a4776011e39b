# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_istio/common.py: durations, host names, semantic equality and integer coercion."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.canary.istio.plugins.module_utils._istio.common import (
    IstioSpecError,
    parse_duration,
    qualify_host,
    same_host,
    specs_equal,
    validate_duration,
)


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("7s", 7.0),
        ("1.5s", 1.5),
        ("500ms", 0.5),
        ("1m", 60.0),
        ("1h30m", 5400.0),
        ("2m0.5s", 120.5),
        (".25s", 0.25),
        ("250us", 0.00025),
        ("250\u00b5s", 0.00025),
        ("10ns", 1e-8),
        ("0", 0.0),
        ("-1s", -1.0),
        (" 3s ", 3.0),
    ],
)
def test_parse_duration_reads_go_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("7", "no unit"),
        ("1.5", "no unit"),
        ("7 s", "not a duration"),
        ("7S", "unknown unit"),
        ("5d", "unknown unit"),
        ("s", "not a duration"),
        (".s", "not a duration"),
        ("", "empty duration"),
        ("abc", "not a duration"),
        (7, "duration string"),
        (None, "duration string"),
        (True, "duration string"),
    ],
)
def test_parse_duration_refuses_bad_text(text, fragment):
    with pytest.raises(IstioSpecError) as err:
        parse_duration(text)
    assert fragment in err.value.message
    assert err.value.option == "duration"


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from([("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]))
def test_parse_duration_scales_every_unit(number, unit):
    suffix, scale = unit
    assert parse_duration("%d%s" % (number, suffix)) == pytest.approx(number * scale)


@pytest.mark.parametrize("text", ["1ms", "7s", "1.5s", "1m", "0.001s"])
def test_validate_duration_accepts_istio_durations(text):
    assert validate_duration(text, "timeout") == text


@pytest.mark.parametrize(
    "text, fragment",
    [("0", "minimum of 1ms"), ("999us", "minimum of 1ms"), ("-5s", "minimum of 1ms"), ("1.0005s", "millisecond precision")],
)
def test_validate_duration_refuses_what_istiod_refuses(text, fragment):
    with pytest.raises(IstioSpecError) as err:
        validate_duration(text, "retries.per_try_timeout")
    assert err.value.option == "retries.per_try_timeout"
    assert fragment in err.value.message


@pytest.mark.parametrize(
    "a, b, namespace",
    [
        ("reviews", "reviews", "prod"),
        ("reviews", "reviews.prod.svc.cluster.local", "prod"),
        ("REVIEWS.prod.svc.cluster.local.", "reviews", "prod"),
        ("reviews", "reviews.staging.svc.cluster.local", None),
        ("reviews.prod", "reviews.prod", None),
        ("api.example.com", "api.example.com", None),
    ],
)
def test_same_host_accepts_names_of_one_service(a, b, namespace):
    first, second = a, b
    assert same_host(first, second, namespace)
    assert same_host(second, first, namespace)


@pytest.mark.parametrize(
    "a, b, namespace",
    [
        ("reviews", "ratings", "prod"),
        ("reviews", "reviews.staging", "prod"),
        # Istio takes a dotted name as written: reviews.prod is not reviews.prod.svc.cluster.local
        # (its route computation leaves a VirtualService for reviews.prod unused).
        ("reviews", "reviews.prod", "prod"),
        ("reviews", "reviews.prod.svc", "prod"),
        ("reviews.prod", "reviews.prod.svc.cluster.local", "prod"),
        ("reviews.prod", "reviews.staging.svc.cluster.local", None),
        ("reviews.prod.svc.other.domain", "reviews.prod", None),
        ("api.example.com", "api", None),
        ("*", "reviews", "prod"),
        ("reviews", None, "prod"),
    ],
)
def test_same_host_tells_services_apart(a, b, namespace):
    assert not same_host(a, b, namespace)


@pytest.mark.parametrize(
    "host, namespace, expected",
    [
        ("reviews", "prod", "reviews.prod.svc.cluster.local"),
        ("reviews.staging", "prod", "reviews.staging"),
        ("reviews.prod.svc.cluster.local", "staging", "reviews.prod.svc.cluster.local"),
        ("reviews", None, "reviews"),
        ("api.example.com", "prod", "api.example.com"),
        ("*.example.com", "prod", "*.example.com"),
        ("*", "prod", "*"),
    ],
)
def test_qualify_host(host, namespace, expected):
    assert qualify_host(host, namespace) == expected


@pytest.mark.parametrize(
    "a, b",
    [
        ({"weight": 10}, {"weight": 10.0}),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        ({"a": 1, "b": None}, {"a": 1}),
        ({"l": [{"x": 1.0}]}, {"l": [{"x": 1}]}),
        ({"l": [1, 2]}, {"l": (1, 2)}),
    ],
)
def test_specs_equal_ignores_what_the_api_server_ignores(a, b):
    first, second = a, b
    assert specs_equal(first, second)
    assert specs_equal(second, first)


@pytest.mark.parametrize(
    "a, b",
    [
        ({"l": [1, 2]}, {"l": [2, 1]}),
        ({"flag": True}, {"flag": 1}),
        ({"flag": False}, {"flag": 0}),
        ({"w": "10"}, {"w": 10}),
        ({"a": {}}, {"a": []}),
        ({"a": 1}, {"a": 1, "b": 0}),
        ({"a": [1]}, {"a": 1}),
        ({"weight": 10}, {"weight": 10.5}),
    ],
)
def test_specs_equal_sees_real_differences(a, b):
    first, second = a, b
    assert not specs_equal(first, second)
    assert not specs_equal(second, first)


def test_istio_spec_error_carries_field_and_message():
    err = IstioSpecError("weights", "weights must sum to exactly 100")
    assert isinstance(err, ValueError)
    assert err.option == "weights"
    assert err.message == "weights must sum to exactly 100"
    assert str(err) == "weights: weights must sum to exactly 100"
