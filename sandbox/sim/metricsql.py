"""PromQL as Guance answers it: a MetricsQL-compatible engine (Guance stores metrics in GuanceDB, which answers PromQL as MetricsQL does), over the
recorded `istio_prom` scrapes that DQL reads too.

Guance names a metric `measurement:field` (`istio_prom:istio_requests_total`). Where MetricsQL
and Prometheus differ, this follows MetricsQL (VictoriaMetrics' documented behaviour):
- `increase(m[d])` does not extrapolate: it is the counter's growth from the last sample before
  the window (looked for up to `LOOKBACK_MS` back) to the last sample in it, counter resets
  taken out. A series with no sample before the window counts from zero, as VictoriaMetrics
  assumes for a counter whose first value is small (every simulated counter is born with its
  first requests).
- `rate(m[d])` is that growth divided by the time between those two samples; without a sample
  before the window, between the first and last samples in it.
- an instant selector takes the last sample up to `LOOKBACK_MS` back.

Supported: selectors with `=`, `!=`, `=~`, `!~` (regexes match the whole value), `[d]` and
`offset d`; numbers; `+ - * / % ^`, comparisons (with `bool`), `and`, `or`, `unless`, with
`on(...)`/`ignoring(...)` one-to-one matching; aggregations sum, avg, min, max, count with
`by`/`without` before or after the argument; functions increase, rate, irate, delta,
histogram_quantile, abs, clamp_min, clamp_max, and sum/avg/min/max/count/last_over_time.
Anything else is a `PromqlError` (the server's 400), never a silently wrong answer.
"""
from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field
from typing import Callable, Iterator, Union

from .record import Point

LOOKBACK_MS = 5 * 60_000
NAME = "__name__"
UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "y": 31_536_000_000}
AGGREGATIONS = {"sum", "avg", "min", "max", "count"}
ROLLUPS = {"increase", "rate", "irate", "delta", "sum_over_time", "avg_over_time", "min_over_time", "max_over_time",
           "count_over_time", "last_over_time"}
SCALAR_FUNCS = {"abs", "clamp_min", "clamp_max", "histogram_quantile"}


class PromqlError(ValueError):
    """A query this engine does not accept; the message names the offending part."""


# -- tokens ---------------------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<duration>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*(?![A-Za-z0-9_:]))
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|0[xX][0-9a-fA-F]+|(?:[Ii]nf|NaN)(?![A-Za-z0-9_:]))
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>==|!=|>=|<=|=~|!~|[-+*/%^=<>(){}\[\],])
""", re.VERBOSE)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if not found:
            raise PromqlError(f"unexpected character {text[pos]!r} at position {pos}")
        pos = found.end()
        if found.lastgroup != "ws":
            out.append((found.lastgroup, found.group()))
    return out


def duration_ms(text: str) -> int:
    parts = re.findall(r"(\d+)(ms|[smhdwy])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise PromqlError(f"bad duration {text!r}; use e.g. 60s, 5m, 1h")
    return sum(int(n) * UNITS_MS[u] for n, u in parts)


# -- syntax tree ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Selector:
    name: str | None
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, value)
    range_ms: int | None = None
    offset_ms: int = 0


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple


@dataclass(frozen=True)
class Aggregate:
    op: str
    arg: object
    labels: tuple[str, ...] = ()
    without: bool = False


@dataclass(frozen=True)
class Binary:
    op: str
    lhs: object
    rhs: object
    bool_mode: bool = False
    on: tuple[str, ...] | None = None
    ignoring: tuple[str, ...] = ()


@dataclass(frozen=True)
class Negate:
    arg: object


_PRECEDENCE = [{"or"}, {"and", "unless"}, {"==", "!=", ">", "<", ">=", "<="}, {"+", "-"}, {"*", "/", "%"}, {"^"}]


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.pos = 0

    def peek(self, ahead: int = 0) -> tuple[str, str] | None:
        index = self.pos + ahead
        return self.toks[index] if index < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1].lower() != value):
            raise PromqlError(f"expected {value or 'more'} at {tok[1] if tok else 'the end'!r}")
        self.pos += 1
        return tok

    def at(self, value: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] in ("op", "ident") and tok[1].lower() == value

    def parse(self):
        node = self.binary(0)
        if self.peek() is not None:
            raise PromqlError(f"unexpected {self.peek()[1]!r} after the expression")
        return node

    def binary(self, level: int):
        if level == len(_PRECEDENCE):
            return self.unary()
        node = self.binary(level + 1)
        while self.peek() and self.peek()[1].lower() in _PRECEDENCE[level] and self.peek()[0] in ("op", "ident"):
            op = self.take()[1].lower()
            bool_mode = False
            if self.at("bool"):
                self.take()
                bool_mode = True
            on, ignoring = None, ()
            if self.at("on") or self.at("ignoring"):
                kind = self.take()[1].lower()
                labels = self.label_list()
                on, ignoring = (labels, ()) if kind == "on" else (None, labels)
            if self.at("group_left") or self.at("group_right"):
                raise PromqlError("group_left/group_right are not supported by the simulator")
            rhs = self.binary(level + 1) if op != "^" else self.binary(level)  # ^ is right-associative
            node = Binary(op, node, rhs, bool_mode, on, ignoring)
        return node

    def unary(self):
        if self.at("-") or self.at("+"):
            sign = self.take()[1]
            arg = self.unary()
            return Negate(arg) if sign == "-" else arg
        return self.postfix(self.primary())

    def postfix(self, node):
        if self.at("["):
            if not isinstance(node, Selector) or node.range_ms is not None:
                raise PromqlError("a range [d] goes right after a metric selector (subqueries are not supported)")
            self.take("[")
            node = Selector(node.name, node.matchers, duration_ms(self.take()[1]))
            self.take("]")
        if self.at("offset"):
            if not isinstance(node, Selector):
                raise PromqlError("offset goes after a metric selector")
            self.take()
            node = Selector(node.name, node.matchers, node.range_ms, duration_ms(self.take()[1]))
        return node

    def primary(self):
        tok = self.peek()
        if tok is None:
            raise PromqlError("the expression ends too early")
        kind, value = tok
        if kind == "number":
            self.take()
            return Number(float(int(value, 16)) if value.lower().startswith("0x") else float(value))
        if value == "(":
            self.take()
            node = self.binary(0)
            self.take(")")
            return node
        if value == "{":
            return Selector(None, self.matchers())
        if kind != "ident":
            raise PromqlError(f"unexpected {value!r}")
        lower = value.lower()
        if lower in AGGREGATIONS:
            return self.aggregation()
        following = self.peek(1)
        if following and following[1] == "(":
            if lower not in ROLLUPS | SCALAR_FUNCS:
                raise PromqlError(f"function {value}() is not supported by the simulator")
            self.take()
            self.take("(")
            args = [self.binary(0)]
            while self.at(","):
                self.take()
                args.append(self.binary(0))
            self.take(")")
            return Call(lower, tuple(args))
        self.take()
        return Selector(value, self.matchers() if self.at("{") else ())

    def aggregation(self):
        op = self.take()[1].lower()
        labels, without = (), False
        if self.at("by") or self.at("without"):
            without = self.take()[1].lower() == "without"
            labels = self.label_list()
        self.take("(")
        arg = self.binary(0)
        if self.at(","):
            raise PromqlError(f"{op}() takes one argument")
        self.take(")")
        if self.at("by") or self.at("without"):
            without = self.take()[1].lower() == "without"
            labels = self.label_list()
        return Aggregate(op, arg, labels, without)

    def label_list(self) -> tuple[str, ...]:
        self.take("(")
        labels = []
        while not self.at(")"):
            labels.append(self.take()[1])
            if self.at(","):
                self.take()
        self.take(")")
        return tuple(labels)

    def matchers(self) -> tuple[tuple[str, str, str], ...]:
        self.take("{")
        out = []
        while not self.at("}"):
            label = self.take()[1]
            op = self.take()[1]
            if op not in ("=", "!=", "=~", "!~"):
                raise PromqlError(f"bad label matcher {op!r} after {label}")
            kind, raw = self.take()
            if kind != "string":
                raise PromqlError(f"the value of {label} must be a quoted string")
            out.append((label, op, _unquote(raw)))
            if self.at(","):
                self.take()
        self.take("}")
        return tuple(out)


def _unquote(raw: str) -> str:
    body = raw[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def parse(text: str):
    return _Parser(text).parse()


# -- data -----------------------------------------------------------------------------------------
Labels = tuple  # sorted (name, value) pairs
Sample = tuple  # (time ms, value)


@dataclass
class Store:
    """Every series of the fetched span: (measurement, field, labels) -> samples oldest first."""

    series: dict[tuple, list[Sample]] = field(default_factory=dict)

    @classmethod
    def of(cls, points: list[Point]) -> "Store":
        store = cls()
        for point in points:
            tags = tuple(sorted((k, str(v)) for k, v in point.tags.items()))
            for name, value in point.fields.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    store.series.setdefault((point.measurement, name, tags), []).append((point.time, float(value)))
        for samples in store.series.values():
            samples.sort()
        return store

    def select(self, selector: Selector) -> list[tuple[dict, list[Sample]]]:
        measurement, field_name = _metric_name(selector.name)
        out = []
        for (meas, name, tags), samples in self.series.items():
            if name != field_name or (measurement is not None and meas != measurement):
                continue
            labels = dict(tags, **{NAME: name})
            if all(_matches(labels.get(label, ""), op, value) for label, op, value in selector.matchers):
                out.append((labels, samples))
        return out


def _metric_name(name: str | None) -> tuple[str | None, str]:
    if not name:
        raise PromqlError("name the metric as measurement:field, e.g. istio_prom:istio_requests_total")
    measurement, colon, field_name = name.partition(":")
    return (measurement, field_name) if colon else (None, measurement)


def _matches(actual: str, op: str, wanted: str) -> bool:
    if op == "=":
        return actual == wanted
    if op == "!=":
        return actual != wanted
    try:
        found = re.fullmatch(wanted, actual) is not None
    except re.error as exc:
        raise PromqlError(f"bad regex {wanted!r}: {exc}") from exc
    return found if op == "=~" else not found


# -- evaluation -----------------------------------------------------------------------------------
Vector = dict  # Labels -> (labels dict, value)
Value = Union[float, Vector]


def _key(labels: dict) -> Labels:
    return tuple(sorted(labels.items()))


def _counter_growth(prev: Sample | None, samples: list[Sample]) -> tuple[float, Sample] | None:
    """Growth from ``prev`` (or from zero) to the last sample, counter resets taken out, and the
    sample it starts from (for ``rate``)."""
    if not samples:
        return None
    base = prev if prev is not None else (samples[0][0], 0.0)
    growth, last = 0.0, base[1]
    for _t, value in samples:
        growth += value - last if value >= last else value
        last = value
    return growth, base


class _Evaluator:
    def __init__(self, store: Store, at_ms: int):
        self.store = store
        self.at_ms = at_ms

    def eval(self, node) -> Value:
        if isinstance(node, Number):
            return node.value
        if isinstance(node, Negate):
            return _apply_scalar(self.eval(node.arg), lambda v: -v)
        if isinstance(node, Selector):
            if node.range_ms is not None:
                raise PromqlError("a range vector needs a function around it, e.g. increase(m[5m])")
            return self.instant(node)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Aggregate):
            return self.aggregate(node)
        if isinstance(node, Binary):
            return self.binary(node)
        raise PromqlError(f"cannot evaluate {node!r}")

    def instant(self, selector: Selector) -> Vector:
        t = self.at_ms - selector.offset_ms
        out: Vector = {}
        for labels, samples in self.store.select(selector):
            recent = [s for s in samples if t - LOOKBACK_MS < s[0] <= t]
            if recent:
                out[_key(labels)] = (labels, recent[-1][1])
        return out

    def window(self, selector: Selector):
        end = self.at_ms - selector.offset_ms
        start = end - selector.range_ms
        for labels, samples in self.store.select(selector):
            inside = [s for s in samples if start < s[0] <= end]
            earlier = [s for s in samples if start - LOOKBACK_MS < s[0] <= start]
            yield labels, (earlier[-1] if earlier else None), inside

    def call(self, node: Call) -> Value:
        if node.func in ROLLUPS:
            if len(node.args) != 1 or not isinstance(node.args[0], Selector) or node.args[0].range_ms is None:
                raise PromqlError(f"{node.func}() takes one range vector, e.g. {node.func}(m[5m])")
            out: Vector = {}
            for labels, prev, inside in self.window(node.args[0]):
                value = _rollup(node.func, prev, inside)
                if value is not None:
                    kept = {k: v for k, v in labels.items() if k != NAME}
                    out[_key(kept)] = (kept, value)
            return out
        args = [self.eval(arg) for arg in node.args]
        if node.func == "histogram_quantile":
            if len(args) != 2 or not isinstance(args[0], float) or not isinstance(args[1], dict):
                raise PromqlError("histogram_quantile(phi, buckets) takes a number and a vector")
            return _histogram_quantile(args[0], args[1])
        if node.func == "abs" and len(args) == 1:
            return _apply_scalar(args[0], abs)
        if node.func in ("clamp_min", "clamp_max") and len(args) == 2 and isinstance(args[1], float):
            bound = args[1]
            pick = max if node.func == "clamp_min" else min
            return _apply_scalar(args[0], lambda v: pick(v, bound))
        raise PromqlError(f"bad arguments to {node.func}()")

    def aggregate(self, node: Aggregate) -> Vector:
        vector = self.eval(node.arg)
        if not isinstance(vector, dict):
            raise PromqlError(f"{node.op}() aggregates a vector, not a number")
        groups: dict[Labels, tuple[dict, list[float]]] = {}
        for labels, value in vector.values():
            if node.without:
                kept = {k: v for k, v in labels.items() if k not in node.labels and k != NAME}
            else:
                kept = {k: labels[k] for k in node.labels if k in labels}
            groups.setdefault(_key(kept), (kept, []))[1].append(value)
        reduce = {"sum": sum, "avg": lambda vs: sum(vs) / len(vs), "min": min, "max": max, "count": len}[node.op]
        return {key: (kept, float(reduce(values))) for key, (kept, values) in groups.items()}

    def binary(self, node: Binary) -> Value:
        lhs, rhs = self.eval(node.lhs), self.eval(node.rhs)
        if node.op in ("and", "or", "unless"):
            if not (isinstance(lhs, dict) and isinstance(rhs, dict)):
                raise PromqlError(f"{node.op} joins two vectors")
            return _set_op(node, lhs, rhs)
        func = _OPS[node.op]
        comparison = node.op in _COMPARISONS
        if isinstance(lhs, float) and isinstance(rhs, float):
            return float(func(lhs, rhs)) if not comparison else float(bool(func(lhs, rhs)))
        if isinstance(lhs, float) or isinstance(rhs, float):
            out: Vector = {}
            vector, scalar, vector_left = (rhs, lhs, False) if isinstance(lhs, float) else (lhs, rhs, True)
            for labels, value in vector.values():
                a, b = (value, scalar) if vector_left else (scalar, value)
                result = _arith(func, a, b)
                if comparison and not node.bool_mode:
                    if result:
                        out[_key(labels)] = (labels, value)
                    continue
                kept = {k: v for k, v in labels.items() if k != NAME}
                out[_key(kept)] = (kept, float(result))
            return out
        return _vector_op(node, func, comparison, lhs, rhs)


_COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}
_OPS: dict[str, Callable] = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
                             "%": math.fmod, "^": operator.pow, "==": operator.eq, "!=": operator.ne, ">": operator.gt,
                             "<": operator.lt, ">=": operator.ge, "<=": operator.le}


def _arith(func: Callable, a: float, b: float):
    try:
        return func(a, b)
    except ZeroDivisionError:
        if func is operator.truediv:
            return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
        return math.nan


def _signature(labels: dict, node: Binary) -> Labels:
    if node.on is not None:
        return tuple(sorted((k, labels.get(k, "")) for k in node.on))
    return tuple(sorted((k, v) for k, v in labels.items() if k != NAME and k not in node.ignoring))


def _set_op(node: Binary, lhs: Vector, rhs: Vector) -> Vector:
    right = {_signature(labels, node) for labels, _v in rhs.values()}
    if node.op == "and":
        return {k: v for k, v in lhs.items() if _signature(v[0], node) in right}
    if node.op == "unless":
        return {k: v for k, v in lhs.items() if _signature(v[0], node) not in right}
    left = {_signature(labels, node) for labels, _v in lhs.values()}
    out = dict(lhs)
    out.update({k: v for k, v in rhs.items() if _signature(v[0], node) not in left})
    return out


def _vector_op(node: Binary, func: Callable, comparison: bool, lhs: Vector, rhs: Vector) -> Vector:
    right: dict[Labels, tuple[dict, float]] = {}
    for labels, value in rhs.values():
        sig = _signature(labels, node)
        if sig in right:
            raise PromqlError(f"many-to-one matching for {node.op}: several right-hand series match {dict(sig)}")
        right[sig] = (labels, value)
    out: Vector = {}
    for labels, value in lhs.values():
        match = right.get(_signature(labels, node))
        if match is None:
            continue
        result = _arith(func, value, match[1])
        if comparison and not node.bool_mode:
            if result:
                out[_key(labels)] = (labels, value)
            continue
        kept = dict(_signature(labels, node)) if node.on is not None else {k: v for k, v in labels.items() if k != NAME}
        out[_key(kept)] = (kept, float(result))
    return out


def _apply_scalar(value: Value, func: Callable) -> Value:
    """A function of each value; as in PromQL, the result has no metric name."""
    if isinstance(value, float):
        return float(func(value))
    out: Vector = {}
    for labels, number in value.values():
        kept = {k: v for k, v in labels.items() if k != NAME}
        out[_key(kept)] = (kept, float(func(number)))
    return out


def _rollup(func: str, prev: Sample | None, inside: list[Sample]) -> float | None:
    if func in ("increase", "rate"):
        grown = _counter_growth(prev, inside)
        if grown is None:
            return None
        growth, base = grown
        if func == "increase":
            return growth
        if prev is None:  # no sample before the window: the rate between the first and last in it
            if len(inside) < 2:
                return None
            growth, base = _counter_growth(inside[0], inside[1:])
        seconds = (inside[-1][0] - base[0]) / 1000.0
        return growth / seconds if seconds > 0 else None
    if func == "irate":
        chain = ([prev] if prev else []) + inside
        if len(chain) < 2:
            return None
        (t0, v0), (t1, v1) = chain[-2], chain[-1]
        grown = v1 - v0 if v1 >= v0 else v1
        return grown / ((t1 - t0) / 1000.0) if t1 > t0 else None
    if func == "delta":
        chain = ([prev] if prev else []) + inside
        return chain[-1][1] - chain[0][1] if len(chain) >= 2 else (inside[-1][1] if inside else None)
    values = [v for _t, v in inside]
    if not values:
        return None
    return {"sum_over_time": sum, "avg_over_time": lambda vs: sum(vs) / len(vs), "min_over_time": min,
            "max_over_time": max, "count_over_time": len, "last_over_time": lambda vs: vs[-1]}[func](values)


def _le(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _histogram_quantile(phi: float, vector: Vector) -> Vector:
    """Per group (labels less ``le``): linear interpolation inside the bucket holding the rank,
    the first bucket from 0, the highest finite bound for a rank in +Inf, counts made monotonic."""
    groups: dict[Labels, tuple[dict, list[tuple[float, float]]]] = {}
    for labels, value in vector.values():
        bound = _le(labels.get("le", ""))
        if bound is None:
            continue
        kept = {k: v for k, v in labels.items() if k not in ("le", NAME)}
        groups.setdefault(_key(kept), (kept, []))[1].append((bound, value))
    out: Vector = {}
    for key, (kept, buckets) in groups.items():
        buckets.sort()
        counts, running = [], 0.0
        for bound, count in buckets:
            running = max(running, count)
            counts.append((bound, running))
        if not counts or counts[-1][0] != math.inf or counts[-1][1] <= 0:
            out[key] = (kept, math.nan)
            continue
        if phi < 0 or phi > 1:
            out[key] = (kept, -math.inf if phi < 0 else math.inf)
            continue
        rank = phi * counts[-1][1]
        index = next(i for i, (_b, c) in enumerate(counts) if c >= rank)
        if index == len(counts) - 1:
            out[key] = (kept, counts[-2][0] if len(counts) > 1 else math.nan)
            continue
        lower_bound, lower_count = (0.0, 0.0) if index == 0 else counts[index - 1]
        upper_bound, upper_count = counts[index]
        if index == 0 and upper_bound <= 0:
            out[key] = (kept, upper_bound)
            continue
        share = (rank - lower_count) / (upper_count - lower_count) if upper_count > lower_count else 1.0
        out[key] = (kept, lower_bound + (upper_bound - lower_bound) * share)
    return out


# -- queries --------------------------------------------------------------------------------------
def _children(node) -> list:
    if isinstance(node, Call):
        return list(node.args)
    if isinstance(node, (Aggregate, Negate)):
        return [node.arg]
    if isinstance(node, Binary):
        return [node.lhs, node.rhs]
    return []


def _reach_ms(node) -> int:
    """How far back from an evaluation time the expression reads."""
    if isinstance(node, Selector):
        return node.offset_ms + (node.range_ms or 0) + LOOKBACK_MS
    return max([_reach_ms(child) for child in _children(node)], default=0)


def _selectors(node) -> Iterator[Selector]:
    if isinstance(node, Selector):
        yield node
    for child in _children(node):
        yield from _selectors(child)


def _series_filter(tree) -> Callable[[str, dict], bool]:
    """Whether a series (measurement, tags) can matter to the expression: some selector's
    measurement and label matchers accept it (``le`` and the name are the fields', not the series')."""
    wanted = [(_metric_name(s.name)[0], [m for m in s.matchers if m[0] not in (NAME, "le")]) for s in _selectors(tree)]

    def keep(measurement: str, tags: dict) -> bool:
        return any((meas is None or meas == measurement) and all(_matches(str(tags.get(label, "")), op, value)
                                                                 for label, op, value in matchers)
                   for meas, matchers in wanted)
    return keep


def query(text: str, rows_of: Callable[..., list[Point]], times_ms: list[int]) -> list[dict]:
    """Evaluate at each of ``times_ms``; Guance's PromQL series shape (newest row first).
    ``rows_of(namespace, start_ms, end_ms, keep)``: the recorder's rows, of the series ``keep`` accepts."""
    tree = parse(text)
    store = Store.of(rows_of("M", min(times_ms) - _reach_ms(tree), max(times_ms), _series_filter(tree)))
    rows: dict[Labels, tuple[dict, list[list]]] = {}
    for at in times_ms:
        value = _Evaluator(store, at).eval(tree)
        if isinstance(value, float):
            value = {(): ({}, value)}
        for key, (labels, number) in value.items():
            rows.setdefault(key, (labels, []))[1].append([at, number])
    series = []
    for _key_, (labels, values) in sorted(rows.items()):
        tags = {k: v for k, v in labels.items() if k != NAME}
        series.append({"name": labels.get(NAME, ""), "columns": ["time", "value"], "tags": tags,
                       "values": list(reversed(values))})
    return series
