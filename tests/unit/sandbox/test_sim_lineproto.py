"""DataKit line protocol parsing and the --traffic option of python -m sandbox.sim."""
from __future__ import annotations

import pytest

from sandbox.sim.lineproto import LineError, parse_lines
from sandbox.sim.live import parse_traffic


def test_line_protocol_values_escapes_and_precision():
    body = 'm\\ x,t\\,1=a\\ b s="q \\"x\\"",i=3i,f=1.5,b=t 1700000000\nm2 v=1 1700000000000\n# comment\n'
    (first, second) = parse_lines(body, None, now_ms=5)
    assert first == ("m x", {"t,1": "a b"}, {"s": 'q "x"', "i": 3, "f": 1.5, "b": True}, 1700000000000)  # seconds guessed
    assert second[3] == 1700000000000  # milliseconds guessed
    assert parse_lines("m v=1 1700000000", "ms", now_ms=5)[0][3] == 1700000000  # precision given: already ms
    assert parse_lines("m v=1", None, now_ms=42)[0][3] == 42


@pytest.mark.parametrize("line", ["cpu,host usage=1", "cpu", "cpu v=", 'cpu s="open', "cpu v=1 notanumber"])
def test_bad_lines_name_the_line(line):
    with pytest.raises(LineError, match="invalid lineprotocol: unable to parse"):
        parse_lines(line, None, now_ms=0)


def test_traffic_option():
    spec = parse_traffic("sandbox-1/prod/reviews=10,jason=0.25,source=gateway-v1")
    assert (spec.cluster, spec.namespace, spec.service, spec.rate, spec.jason_share, spec.source_workload) == (
        "sandbox-1", "prod", "reviews", 10.0, 0.25, "gateway-v1")
    for bad in ("prod/reviews=10", "a/b/c", "a/b/c=1,jason=2", "a/b/c=1,colour=red"):
        with pytest.raises(ValueError, match="--traffic"):
            parse_traffic(bad)
