"""InfluxDB line protocol as DataKit's `/v1/write/{category}` reads it (enough for events, metrics, logs).

`measurement[,tag=value...] field=value[,field=value...] [timestamp]`; backslash escapes `,`, ` ` and
`=` in names and tag values; string fields in double quotes; `123i`/`123u` integers, floats,
booleans `t/T/true/True/TRUE` and `f/...`.
"""
from __future__ import annotations

PRECISION_NS = {"n": 1, "ns": 1, "u": 1_000, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                "m": 60_000_000_000, "h": 3_600_000_000_000}
TRUE = {"t", "T", "true", "True", "TRUE"}
FALSE = {"f", "F", "false", "False", "FALSE"}


class LineError(ValueError):
    """A line that does not parse; the message follows DataKit's `invalid lineprotocol: ...` text."""


def _split(text: str, seps: str, quotes: bool = False) -> list[str]:
    """Split on unescaped separators (and outside double quotes when `quotes`)."""
    parts, current, i, in_quote = [], [], 0, False
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if quotes and ch == '"':
            in_quote = not in_quote
        if ch in seps and not in_quote:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    if in_quote:
        raise LineError("unterminated string field")
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ',= "\\':
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _field_value(raw: str):
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            raise LineError(f"bad string field {raw!r}")
        return raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    if raw[-1:] in ("i", "u"):
        return int(raw[:-1])
    return float(raw)


def auto_precision_ns(stamp: int) -> int:
    """DataKit's precision guess (since v1.30) from the timestamp's magnitude: s, ms, us or ns."""
    if stamp < 10**11:
        return PRECISION_NS["s"]
    if stamp < 10**14:
        return PRECISION_NS["ms"]
    if stamp < 10**17:
        return PRECISION_NS["u"]
    return 1


def parse_lines(body: str, precision: str | None, now_ms: int) -> list[tuple[str, dict, dict, int]]:
    """(measurement, tags, fields, time ms) per line; raises LineError naming the bad line."""
    if precision is not None and precision not in PRECISION_NS:
        raise LineError(f"invalid precision {precision!r}")
    points = []
    for line in body.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            sections = [s for s in _split(line, " ", quotes=True) if s != ""]
            if len(sections) not in (2, 3):
                raise LineError("expected measurement, fields and an optional timestamp")
            head = _split(sections[0], ",")
            measurement = _unescape(head[0])
            if not measurement:
                raise LineError("missing measurement")
            tags = {}
            for pair in head[1:]:
                key, sep, value = pair.partition("=")
                if not sep or not value:
                    raise LineError("missing tag value")
                tags[_unescape(key)] = _unescape(value)
            fields = {}
            for pair in _split(sections[1], ",", quotes=True):
                key, sep, value = pair.partition("=")
                if not sep or not value:
                    raise LineError("missing field value")
                fields[_unescape(key)] = _field_value(value)
            if len(sections) == 3:
                stamp = int(sections[2])
                scale = PRECISION_NS[precision] if precision else auto_precision_ns(stamp)
                time_ms = stamp * scale // 1_000_000
            else:
                time_ms = now_ms
        except (LineError, ValueError) as exc:
            raise LineError(f"invalid lineprotocol: unable to parse '{line}': {exc}") from exc
        points.append((measurement, tags, fields, time_ms))
    return points
