"""A DQL evaluator over the recorded data (DQL as docs.guance.com describes it), answering in Guance's series shape.

Supported: `NS::source:(targets) {filters} [time] BY tags ORDER BY time LIMIT n OFFSET n SLIMIT n SOFFSET n`
- namespaces M, T, L, E (and long forms metric/tracing/logging/event); a statement without
  `NS::` is M (DataKit's own example `cpu:(usage_idle) LIMIT 1`);
- source: a name, a backtick name, `*`, or `re(`regex`)`;
- targets: fields, `*`, or aggregates count, count_distinct, sum, avg, min, max, first, last,
  median, percentile(f, p), each with an optional `AS alias`;
- filters: `=`, `!=`, `>`, `>=`, `<`, `<=`, `IN [..]`, `NOT IN [..]`, `= re(..)`, `!= re(..)`,
  `,`/AND and `||`/OR with parentheses;
- time: `[10m]`, `[10m:5m]`, `[10m:5m:1m]`, `[start:end]` (ms, or s when < 1e12), `[::1m]`,
  `[10m::1m:rate]` (rollup of M series: rate, irate, increase... see ROLLUPS); a request
  `timeRange` / `time_range` overrides the statement's range, as DataKit documents.

Semantics chosen where Guance's docs are silent (documented in docs/simulator.md):
- regex: partial match (search) in M (InfluxQL-like), whole-value match elsewhere;
- a missing field never satisfies `=`, `IN`, comparisons and always satisfies `!=`/`NOT IN`;
- numbers compare as numbers when both sides parse as numbers, else as strings;
- percentile interpolates linearly between closest ranks;
- rate per series in a bucket = (last - value before the bucket) / seconds between them;
- aggregate rows without an interval carry time null (T/L/E) or the range start (M).
Anything else is a `DqlError`, never a silently empty answer.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

from .record import Point

NAMESPACES = {"M": "M", "METRIC": "M", "T": "T", "TRACING": "T", "L": "L", "LOGGING": "L", "E": "E", "EVENT": "E"}
NAMESPACE_NAMES = {"M": "metric", "T": "tracing", "L": "logging", "E": "event"}
AGGREGATES = {"count", "count_distinct", "sum", "avg", "min", "max", "first", "last", "median", "percentile"}
ROLLUPS = {"rate", "irate", "increase", "avg", "sum", "min", "max", "count", "first", "last", "median"}
KEYWORDS = {"BY", "ORDER", "LIMIT", "OFFSET", "SLIMIT", "SOFFSET", "AS", "IN", "NOT", "AND", "OR", "ASC", "DESC"}
UNSUPPORTED_KEYWORDS = {"HAVING", "SORDER", "FILL", "TZ", "WITH"}
DEFAULT_RANGE_MS = 15 * 60_000
DEFAULT_LISTING_LIMIT = 1000
UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


class DqlError(ValueError):
    """Syntax or feature this evaluator (or DQL) does not accept; the message names the offending part."""


# -- tokens ---------------------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<backtick>`(?:[^`\\]|\\.)*`)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?[a-zA-Z]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.\-]*)
  | (?P<op>::|!=|>=|<=|\|\||&&|=~|!~|[=<>:(){}\[\],*])
""", re.VERBOSE)


@dataclass
class Tok:
    kind: str
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "ident" else ""


def tokenize(text: str) -> list[Tok]:
    out, pos = [], 0
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if not found:
            raise DqlError(f"parse error at position {pos}: unexpected {text[pos:pos + 10]!r}")
        if found.lastgroup != "ws":
            out.append(Tok(found.lastgroup, found.group(), pos))
        pos = found.end()
    return out


def _unquote(tok: Tok) -> str:
    if tok.kind in ("backtick", "string"):
        return re.sub(r"\\(.)", r"\1", tok.text[1:-1])
    return tok.text


# -- syntax tree ----------------------------------------------------------------------------------
@dataclass
class Target:
    func: str | None  # None = plain field
    field: str  # '*' for count(*) or all fields
    arg: float | None = None  # percentile's p
    alias: str | None = None

    @property
    def column(self) -> str:
        if self.alias:
            return self.alias
        if self.func is None:
            return self.field
        inner = self.field if self.arg is None else f"{self.field}, {_num_text(self.arg)}"
        return f"{self.func}({inner})"


@dataclass
class Cond:
    field: str
    op: str  # = != > >= < <= in notin
    value: object  # str | float | list | re.Pattern


@dataclass
class BoolExpr:
    op: str  # and / or
    items: list


@dataclass
class TimeSpec:
    start: str | None = None
    end: str | None = None
    interval: str | None = None
    rollup: str | None = None


@dataclass
class Query:
    namespace: str
    source: str | re.Pattern
    targets: list[Target] = field(default_factory=list)
    where: object = None
    time: TimeSpec | None = None
    by: list[str] = field(default_factory=list)
    order_desc: bool = True
    limit: int | None = None
    offset: int = 0
    slimit: int | None = None
    soffset: int = 0

    @property
    def aggregated(self) -> bool:
        return any(t.func for t in self.targets)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = tokenize(text)
        self.i = 0

    def peek(self, ahead: int = 0) -> Tok | None:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else None

    def next(self) -> Tok:
        tok = self.peek()
        if tok is None:
            raise DqlError("parse error: unexpected end of query")
        self.i += 1
        return tok

    def accept(self, text: str) -> bool:
        tok = self.peek()
        if tok is not None and (tok.text == text or tok.upper == text):
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> Tok:
        tok = self.next()
        if tok.text != text and tok.upper != text:
            raise DqlError(f"parse error at position {tok.pos}: expected {text!r}, got {tok.text!r}")
        return tok

    def name(self) -> str:
        tok = self.next()
        if tok.kind not in ("ident", "backtick", "string") or tok.upper in KEYWORDS:
            raise DqlError(f"parse error at position {tok.pos}: expected a name, got {tok.text!r}")
        return _unquote(tok)

    def parse(self) -> Query:
        namespace = "M"
        if self.peek(1) is not None and self.peek(1).text == "::":
            ns = self.next()
            if ns.upper not in NAMESPACES:
                raise DqlError(f"unsupported namespace {ns.text!r}; this evaluator answers M::, T::, L:: and E::")
            namespace = NAMESPACES[ns.upper]
            self.next()
        query = Query(namespace, self.source())
        if self.accept(":"):
            self.expect("(")
            query.targets = self.targets()
        while self.peek() is not None:
            tok = self.peek()
            if tok.text == "{":
                if query.where is not None:
                    raise DqlError(f"parse error at position {tok.pos}: a second filter block")
                self.next()
                query.where = self.or_expr()
                self.expect("}")
            elif tok.text == "[":
                query.time = self.time_spec()
            elif tok.upper == "BY":
                self.next()
                query.by = [self.name()]
                while self.accept(","):
                    query.by.append(self.name())
            elif tok.upper == "ORDER":
                self.next()
                self.expect("BY")
                column = self.name()
                if column != "time":
                    raise DqlError(f"ORDER BY {column}: only ORDER BY time is supported")
                query.order_desc = not self.accept("ASC")
                self.accept("DESC")
            elif tok.upper in ("LIMIT", "OFFSET", "SLIMIT", "SOFFSET"):
                self.next()
                number = self.next()
                if number.kind != "number" or not number.text.isdigit():
                    raise DqlError(f"{tok.upper} needs a whole number, got {number.text!r}")
                setattr(query, tok.upper.lower(), int(number.text))
            elif tok.upper in UNSUPPORTED_KEYWORDS:
                raise DqlError(f"unsupported DQL clause {tok.text!r} in this evaluator")
            else:
                raise DqlError(f"parse error at position {tok.pos}: unexpected {tok.text!r}")
        if query.targets and any(t.func for t in query.targets) and not all(t.func for t in query.targets):
            raise DqlError("cannot mix aggregate functions and plain fields in one target list")
        return query

    def source(self) -> str | re.Pattern:
        tok = self.next()
        if tok.text == "*":
            return re.compile(".*")
        if tok.upper == "RE" and self.peek() is not None and self.peek().text == "(":
            return self.regex_call(tok)
        if tok.kind in ("ident", "backtick", "string"):
            name = _unquote(tok)
            return re.compile(".*") if name == "*" else name
        raise DqlError(f"parse error at position {tok.pos}: expected a source, got {tok.text!r}")

    def regex_call(self, tok: Tok) -> re.Pattern:
        self.expect("(")
        body = self.next()
        if body.kind not in ("backtick", "string"):
            raise DqlError(f"parse error at position {body.pos}: re() needs a quoted pattern")
        self.expect(")")
        try:
            return re.compile(_unquote(body))
        except re.error as exc:
            raise DqlError(f"invalid regular expression at position {tok.pos}: {exc}") from exc

    def targets(self) -> list[Target]:
        out = []
        while True:
            out.append(self.target())
            if self.accept(")"):
                return out
            self.expect(",")

    def target(self) -> Target:
        tok = self.next()
        if tok.text == "*":
            target = Target(None, "*")
        elif tok.kind == "ident" and self.peek() is not None and self.peek().text == "(":
            func = tok.text.lower()
            if func not in AGGREGATES:
                raise DqlError(f"unsupported function {tok.text}() in this evaluator; supported: {', '.join(sorted(AGGREGATES))}")
            self.next()
            arg_tok = self.next()
            if arg_tok.text == "*":
                name = "*"
            elif arg_tok.kind in ("ident", "backtick", "string"):
                name = _unquote(arg_tok)
            else:
                raise DqlError(f"parse error at position {arg_tok.pos}: {func}() needs a field")
            arg = None
            if func == "percentile":
                self.expect(",")
                number = self.next()
                try:
                    arg = float(number.text)
                except ValueError as exc:
                    raise DqlError(f"percentile() needs a number 0..100, got {number.text!r}") from exc
                if not 0 <= arg <= 100:
                    raise DqlError(f"percentile() needs a number 0..100, got {number.text!r}")
            self.expect(")")
            if name == "*" and func != "count":
                raise DqlError(f"{func}(*) is not valid; name a field")
            target = Target(func, name, arg)
        elif tok.kind in ("ident", "backtick", "string") and tok.upper not in KEYWORDS:
            target = Target(None, _unquote(tok))
        else:
            raise DqlError(f"parse error at position {tok.pos}: unexpected {tok.text!r} in the target list")
        if self.accept("AS"):
            target.alias = self.name()
        return target

    def or_expr(self):
        items = [self.and_expr()]
        while self.accept("||") or self.accept("OR"):
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolExpr("or", items)

    def and_expr(self):
        items = [self.atom()]
        while self.accept(",") or self.accept("AND") or self.accept("&&"):
            items.append(self.atom())
        return items[0] if len(items) == 1 else BoolExpr("and", items)

    def atom(self):
        if self.accept("("):
            inner = self.or_expr()
            self.expect(")")
            return inner
        tok = self.peek()
        if tok is not None and tok.kind == "ident" and self.peek(1) is not None and self.peek(1).text == "(":
            raise DqlError(f"unsupported filter function {tok.text}() in this evaluator")
        name = self.name()
        op_tok = self.next()
        op = op_tok.text.upper() if op_tok.kind == "ident" else op_tok.text
        if op == "NOT":
            self.expect("IN")
            return Cond(name, "notin", self.value_list())
        if op == "IN":
            return Cond(name, "in", self.value_list())
        if op not in ("=", "!=", ">", ">=", "<", "<="):
            raise DqlError(f"parse error at position {op_tok.pos}: unsupported operator {op_tok.text!r}")
        value_tok = self.next()
        if value_tok.upper == "RE" and self.peek() is not None and self.peek().text == "(":
            if op not in ("=", "!="):
                raise DqlError(f"re() works with = and != only, not {op}")
            return Cond(name, op, self.regex_call(value_tok))
        return Cond(name, op, self.scalar(value_tok))

    def scalar(self, tok: Tok):
        if tok.kind in ("string", "backtick"):
            return _unquote(tok)
        if tok.kind == "number":
            try:
                return float(tok.text)
            except ValueError as exc:
                raise DqlError(f"parse error at position {tok.pos}: bad number {tok.text!r}") from exc
        if tok.kind == "ident" and tok.upper not in KEYWORDS:
            return {"TRUE": True, "FALSE": False}.get(tok.upper, tok.text)
        raise DqlError(f"parse error at position {tok.pos}: expected a value, got {tok.text!r}")

    def value_list(self) -> list:
        self.expect("[")
        values = []
        if self.accept("]"):
            return values
        while True:
            values.append(self.scalar(self.next()))
            if self.accept("]"):
                return values
            self.expect(",")

    def time_spec(self) -> TimeSpec:
        open_tok = self.expect("[")
        close = self.text.find("]", open_tok.pos)
        if close < 0:
            raise DqlError(f"parse error at position {open_tok.pos}: unclosed time range")
        raw = self.text[open_tok.pos + 1:close]
        while self.peek() is not None and self.peek().pos <= close:
            self.i += 1
        parts = [p.strip() or None for p in raw.split(":")]
        if len(parts) > 4:
            raise DqlError(f"time range [{raw}] has more than four parts")
        parts += [None] * (4 - len(parts))
        spec = TimeSpec(*parts)
        if spec.rollup is not None and spec.rollup.lower() not in ROLLUPS:
            raise DqlError(f"unsupported rollup function {spec.rollup!r}; supported: {', '.join(sorted(ROLLUPS))}")
        return spec


def parse(text: str) -> Query:
    if not isinstance(text, str) or not text.strip():
        raise DqlError("empty query")
    return _Parser(text.strip()).parse()


def parse_conditions(text: str):
    """DataKit's `conditions`: an extra filter ANDed to the statement, with or without braces."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    parser = _Parser(body)
    expr = parser.or_expr()
    if parser.peek() is not None:
        raise DqlError(f"parse error in conditions at {parser.peek().text!r}")
    return expr


# -- time -----------------------------------------------------------------------------------------
def duration_ms(text: str) -> int:
    found = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", text.strip())
    if not found:
        raise DqlError(f"bad duration {text!r}; use e.g. 30s, 10m, 1h")
    return int(float(found.group(1)) * UNITS_MS[found.group(2)])


def _instant(text: str, now_ms: int) -> int:
    if re.fullmatch(r"\d+", text):
        value = int(text)
        return value if value >= 10**12 else value * 1000
    return now_ms - duration_ms(text)


def resolve_range(spec: TimeSpec | None, time_range: list | None, now_ms: int) -> tuple[int, int]:
    if time_range:
        if not isinstance(time_range, (list, tuple)) or not all(isinstance(v, (int, float)) for v in time_range) \
                or len(time_range) > 2:
            raise DqlError("timeRange must be [start_ms, end_ms] (epoch milliseconds)")
        start = int(time_range[0])
        end = int(time_range[1]) if len(time_range) == 2 else now_ms
    elif spec is not None and spec.start is not None:
        start = _instant(spec.start, now_ms)
        end = _instant(spec.end, now_ms) if spec.end is not None else now_ms
    else:
        start, end = now_ms - DEFAULT_RANGE_MS, now_ms
    if start > end:
        raise DqlError(f"time range start {start} is after its end {end}")
    return start, end


def resolve_interval(spec: TimeSpec | None, interval_s: float | None, start: int, end: int) -> int | None:
    if interval_s:
        return int(float(interval_s) * 1000)
    if spec is None or spec.interval is None:
        return None
    if spec.interval.lower() == "auto":
        return max(10_000, -(-(end - start) // 60 // 10_000) * 10_000)
    return duration_ms(spec.interval)


# -- evaluation -----------------------------------------------------------------------------------
def _number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _compare(left, op: str, right) -> bool:
    a, b = _number(left), _number(right)
    if a is None or b is None:
        a, b = str(left), str(right)
    return {"=": a == b, "!=": a != b, ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]


def matches(expr, row: Point, partial_regex: bool) -> bool:
    if expr is None:
        return True
    if isinstance(expr, BoolExpr):
        results = (matches(e, row, partial_regex) for e in expr.items)
        return all(results) if expr.op == "and" else any(results)
    value = row.get(expr.field)
    if isinstance(expr.value, re.Pattern):
        hit = value is not None and (expr.value.search if partial_regex else expr.value.fullmatch)(str(value)) is not None
        return hit if expr.op == "=" else not hit
    if expr.op in ("in", "notin"):
        hit = value is not None and any(_compare(value, "=", v) for v in expr.value)
        return hit if expr.op == "in" else not hit
    if value is None:
        return expr.op == "!="
    return _compare(value, expr.op, expr.value)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def aggregate(func: str, values: list, arg: float | None = None):
    """One aggregate over (time, value) pairs; None when there is nothing to aggregate."""
    if func == "count":
        return len(values)
    if func == "count_distinct":
        return len({v for _time, v in values})
    if not values:
        return None
    if func in ("first", "last"):
        ordered = sorted(values, key=lambda tv: tv[0])
        return ordered[0][1] if func == "first" else ordered[-1][1]
    numbers = [n for n in (_number(v) for _time, v in values) if n is not None]
    if not numbers:
        return None
    if func == "sum":
        return _tidy(sum(numbers))
    if func == "avg":
        return sum(numbers) / len(numbers)
    if func == "min":
        return _tidy(min(numbers))
    if func == "max":
        return _tidy(max(numbers))
    if func == "median":
        return percentile(numbers, 50)
    if func == "percentile":
        return percentile(numbers, arg if arg is not None else 50)
    raise DqlError(f"unsupported function {func}()")


def rollup(func: str, points: list[tuple[int, float]], before: tuple[int, float] | None):
    """One series' value in one bucket; `before` is its last point before the bucket (for rates)."""
    if func in ("rate", "irate", "increase"):
        chain = ([before] if before else []) + points
        if func == "irate":
            chain = chain[-2:]
        if len(chain) < 2:
            return None
        delta = 0.0
        for (_t0, v0), (_t1, v1) in zip(chain, chain[1:]):
            delta += v1 - v0 if v1 >= v0 else v1  # a counter reset starts again from zero
        if func == "increase":
            return delta
        seconds = (chain[-1][0] - chain[0][0]) / 1000.0
        return delta / seconds if seconds > 0 else None
    return aggregate(func, points)


def _tidy(value: float):
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def _num_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass
class Result:
    """One entry of `content.data` (or DataKit's `content` list)."""

    series: list
    column_names: list
    namespace: str
    source: str


def _source_matches(source, measurement: str) -> bool:
    return source.fullmatch(measurement) is not None if isinstance(source, re.Pattern) else source == measurement


def evaluate(text: str, rows_of: Callable[[str, int, int], list[Point]], now_ms: int, *, time_range: list | None = None,
             interval_s: float | None = None, limit: int | None = None, offset: int | None = None,
             slimit: int | None = None, soffset: int | None = None, conditions: str | None = None,
             default_slimit: int | None = None, ascending: bool | None = None, align_time: bool = False) -> Result:
    """Run one DQL statement. `rows_of(namespace, start_ms, end_ms)` gives the candidate rows.

    Request-level `limit`/`slimit`/`offset`/`soffset` take precedence over the statement's.
    `align_time`: interval buckets sit on multiples of the interval (as Guance documents for
    its examples); without it they count from the range's start. Either way a bucket is
    labelled at its start."""
    query = parse(text)
    start, end = resolve_range(query.time, time_range, now_ms)
    interval = resolve_interval(query.time, interval_s, start, end)
    extra = parse_conditions(conditions) if conditions else None
    partial = query.namespace == "M"
    rollup_func = (query.time.rollup or "").lower() if query.time else ""
    if rollup_func and query.namespace != "M":
        raise DqlError("rollup functions apply to metrics (M::) only")
    fetch_start = start - (interval or (end - start)) if rollup_func else start
    rows = [r for r in rows_of(query.namespace, fetch_start, end)
            if _source_matches(query.source, r.measurement) and fetch_start <= r.time <= end
            and matches(query.where, r, partial) and matches(extra, r, partial)]
    named = [t.field for t in query.targets if t.field != "*"]
    if named and len(named) == len(query.targets):
        # Rows without any asked-for field are not part of the answer (no empty groups from them).
        rows = [r for r in rows if any(r.get(f) is not None for f in named)]
    in_range = [r for r in rows if r.time >= start]
    source_text = query.source.pattern if isinstance(query.source, re.Pattern) else query.source
    groups: dict[tuple, list[Point]] = {}
    for row in (rows if rollup_func else in_range):
        groups.setdefault(tuple(row.get(b) for b in query.by), []).append(row)
    if ascending is None:
        ascending = not query.order_desc
    row_limit = limit if limit is not None else query.limit
    row_offset = offset if offset is not None else query.offset
    series = []
    for key in sorted(groups, key=lambda k: tuple("" if v is None else str(v) for v in k)):
        group_rows = groups[key]
        if query.aggregated:
            columns, values = _aggregate_rows(query, group_rows, start, end, interval, rollup_func, align_time)
        else:
            columns, values = _listing(query, [r for r in group_rows if r.time >= start])
            if row_limit is None:
                row_limit = DEFAULT_LISTING_LIMIT
        if not values:
            continue
        values.sort(key=lambda v: (v[0] is None, v[0] or 0), reverse=not ascending)
        values = values[row_offset:]
        if row_limit is not None:
            values = values[:row_limit]
        entry = {"columns": columns, "values": values}
        if query.namespace == "M" or not query.by:
            entry["name"] = group_rows[0].measurement if not isinstance(query.source, re.Pattern) else source_text
        if query.by:
            entry["tags"] = {b: ("" if v is None else v) for b, v in zip(query.by, key)}
        series.append(entry)
    cap = slimit if slimit is not None else (query.slimit if query.slimit is not None else default_slimit)
    first = soffset if soffset is not None else query.soffset
    series = series[first:]
    if cap is not None:
        series = series[:cap]
    column_names = [t.column for t in query.targets] if query.targets else []
    return Result(series, column_names, NAMESPACE_NAMES[query.namespace], source_text)


def _bucket_of(t: int, interval: int | None, start: int, align_time: bool) -> int:
    if not interval:
        return start
    origin = 0 if align_time else start
    return origin + ((t - origin) // interval) * interval


def _aggregate_rows(query: Query, rows: list[Point], start: int, end: int, interval: int | None,
                    rollup_func: str, align_time: bool) -> tuple[list, list]:
    columns = ["time"] + [t.column for t in query.targets]
    buckets: dict[int, list[Point]] = {}
    for row in rows:
        if row.time >= start:
            buckets.setdefault(_bucket_of(row.time, interval, start, align_time), []).append(row)
    values = []
    for bucket, bucket_rows in buckets.items():
        line = [bucket if (interval or query.namespace == "M") else None]
        for target in query.targets:
            if rollup_func and target.field != "*":
                pairs = _rollup_values(rows, target.field, bucket, bucket + (interval or end - start + 1), rollup_func)
            else:
                pairs = [(r.time, r.get(target.field) if target.field != "*" else 1) for r in bucket_rows
                         if target.field == "*" or r.get(target.field) is not None]
            line.append(aggregate(target.func, pairs, target.arg))
        values.append(line)
    return columns, values


def _rollup_values(rows: list[Point], field_name: str, lo: int, hi: int, func: str) -> list[tuple[int, float]]:
    """Per series (measurement + all tags) rollup of `field_name` over [lo, hi); one value per series."""
    by_series: dict[tuple, list[tuple[int, float]]] = {}
    for row in rows:
        value = _number(row.fields.get(field_name))
        if value is not None:
            by_series.setdefault((row.measurement, tuple(sorted(row.tags.items()))), []).append((row.time, value))
    out = []
    for points in by_series.values():
        points.sort()
        inside = [p for p in points if lo <= p[0] < hi]
        before = [p for p in points if p[0] < lo]
        if not inside:
            continue
        value = rollup(func, inside, before[-1] if before else None)
        if value is not None:
            out.append((inside[-1][0], value))
    return out


def _listing(query: Query, rows: list[Point]) -> tuple[list, list]:
    if not query.targets or any(t.field == "*" for t in query.targets):
        names = sorted({k for r in rows for k in list(r.tags) + list(r.fields)})
        columns = ["time"] + names
        return columns, [[r.time] + [r.get(n) for n in names] for r in rows]
    columns = ["time"] + [t.column for t in query.targets]
    return columns, [[r.time] + [r.get(t.field) for t in query.targets] for r in rows]
