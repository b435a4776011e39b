"""What the mesh saw, recorded the way Istio, Envoy and DataKit report it.

- Metrics: every request adds to `istio_requests_total` and `istio_request_duration_milliseconds`
  (Istio's default buckets) under its label set; `metric_points` replays them as DataKit scrapes
  of measurement `istio_prom` (cumulative values every `scrape_interval_ms`, field name = full
  Prometheus name, one bucket point per `le`), and `prometheus_text` exposes the current totals.
- Spans (T::), logs (L::) and events (E::) are stored as `Point`s, the shape the DQL evaluator reads.
- A `Clock` gives simulated epoch milliseconds; `speed` > 1 is the fast clock.
"""
from __future__ import annotations

import bisect
import math
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable, Iterable, Iterator

# Istio's default buckets for istio_request_duration_milliseconds (ms); +Inf is implied.
ISTIO_BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
                 300000, 600000, 1800000, 3600000)
REQUESTS_TOTAL = "istio_requests_total"
DURATION = "istio_request_duration_milliseconds"
MEASUREMENT = "istio_prom"
LABELS = ("reporter", "source_workload", "source_workload_namespace", "destination_workload",
          "destination_workload_namespace", "destination_service", "destination_service_name",
          "destination_service_namespace", "destination_version", "destination_cluster",
          "response_code", "response_flags")
_CLUSTER, _NAMESPACE, _WORKLOAD, _SOURCE_NAMESPACE = (
    LABELS.index(name) for name in
    ("destination_cluster", "destination_workload_namespace", "destination_workload", "source_workload_namespace"))


def _place(key: tuple) -> tuple[str, str, str | None]:
    """Where a series lives: its cluster, its workload's namespace and the workload; a request that
    reached no pod (workload "unknown") belongs to its client's namespace, with no workload."""
    if key[_WORKLOAD] == "unknown":
        return key[_CLUSTER], key[_SOURCE_NAMESPACE], None
    return key[_CLUSTER], key[_NAMESPACE], key[_WORKLOAD]


def go_float(value: float) -> str:
    """A float as Go's fmt.Sprint prints it (DataKit's `le` tag): 0.5, 600000, 1.8e+06, +Inf."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    dec = Decimal(repr(float(value))).normalize()
    sign, digits, exponent = dec.as_tuple()
    exp10 = len(digits) + int(exponent) - 1
    text = "-" if sign else ""
    if exp10 < -4 or exp10 >= 6:  # Go's shortest %g switches to an exponent at 1e+06
        mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
        return f"{text}{mantissa}e{'+' if exp10 >= 0 else '-'}{abs(exp10):02d}"
    return text + format(dec, "f")


LE_TAGS = tuple(go_float(b) for b in ISTIO_BUCKETS) + ("+Inf",)


class Clock:
    """Simulated epoch ms: wall time, or `speed` times faster from the moment it was made."""

    def __init__(self, speed: float = 1.0, start_ms: int | None = None):
        if speed <= 0:
            raise ValueError("clock speed must be > 0")
        self.speed = speed
        self._wall0 = time.time()
        self._sim0 = start_ms if start_ms is not None else int(self._wall0 * 1000)

    def now_ms(self) -> int:
        return self._sim0 + int((time.time() - self._wall0) * 1000 * self.speed)


class ManualClock(Clock):
    """A clock that moves only when told (tests)."""

    def __init__(self, start_ms: int = 1_700_000_000_000):
        super().__init__(1.0, start_ms)
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> None:
        self._now += int(ms)


# The source of an SLO's cost events (sandbox/sim/guard.py).
SLO_SOURCE = "slo"


@dataclass
class Point:
    """One row of a Guance namespace: measurement/source, tags, fields, time in epoch ms."""

    measurement: str
    tags: dict
    fields: dict
    time: int

    def get(self, key: str):
        if key in self.tags:
            return self.tags[key]
        if key in self.fields:
            return self.fields[key]
        if key in ("source", "__source"):
            return self.measurement
        if key == "time":
            return self.time
        return None


@dataclass
class _Series:
    """Cumulative counter and histogram of one label set."""

    count: int = 0
    total_ms: float = 0.0
    buckets: list = field(default_factory=lambda: [0] * (len(ISTIO_BUCKETS) + 1))

    def add(self, duration_ms: float) -> None:
        self.count += 1
        self.total_ms += duration_ms
        # Cumulative buckets: every bound >= the duration counts it; the last slot is +Inf.
        for i in range(bisect.bisect_left(ISTIO_BUCKETS, duration_ms), len(self.buckets)):
            self.buckets[i] += 1


class Recorder:
    """Thread-safe store of requests, spans, logs, events and written points."""

    def __init__(self, scrape_interval_ms: int = 10_000, retention_ms: int = 6 * 3600_000):
        self.scrape_interval_ms = scrape_interval_ms
        self.retention_ms = retention_ms
        self._lock = threading.RLock()
        self._requests: list[tuple[int, tuple, float]] = []  # (time ms, label tuple, duration ms), time-ordered
        self._base: dict[tuple, _Series] = {}  # requests folded in by pruning
        self._totals: dict[tuple, _Series] = {}  # everything, for /metrics
        self.points: dict[str, list[Point]] = {"M": [], "T": [], "L": [], "E": []}

    # -- writing ----------------------------------------------------------------------------------
    def request(self, time_ms: int, labels: dict, duration_ms: float) -> None:
        key = tuple(str(labels.get(name, "unknown")) for name in LABELS)
        with self._lock:
            if self._requests and time_ms < self._requests[-1][0]:
                bisect.insort(self._requests, (time_ms, key, duration_ms), key=lambda r: r[0])
            else:
                self._requests.append((time_ms, key, duration_ms))
            self._totals.setdefault(key, _Series()).add(duration_ms)

    def add(self, namespace: str, point: Point) -> None:
        with self._lock:
            self.points.setdefault(namespace, []).append(point)

    def prune(self, now_ms: int) -> None:
        """Forget rows older than the retention; request counts stay in the cumulative base.

        An SLO's cost events are kept whatever their age: they are the SLO's record over its whole
        check range (days), which Guance keeps and the SLO pre-flight sums."""
        cutoff = now_ms - self.retention_ms
        with self._lock:
            cut = bisect.bisect_left(self._requests, cutoff, key=lambda r: r[0])
            for _time, key, duration in self._requests[:cut]:
                self._base.setdefault(key, _Series()).add(duration)
            del self._requests[:cut]
            for ns, rows in self.points.items():
                self.points[ns] = [p for p in rows if p.time >= cutoff or p.measurement == SLO_SOURCE]

    def series_places(self) -> set[tuple[str, str, str | None]]:
        """(cluster, namespace, workload) of every /metrics series: see ``_place``."""
        with self._lock:
            return {_place(key) for key in self._totals}

    def forget_series(self, gone: Callable[[str, str, str | None], bool]) -> int:
        """Drop the /metrics series whose place is ``gone``, as a pod that no longer exists stops
        being scraped; returns how many went. Without this, every series of every run stays for the
        life of the simulator and scrapes grow until they time out."""
        with self._lock:
            doomed = [key for key in self._totals if gone(*_place(key))]
            for key in doomed:
                del self._totals[key]
        return len(doomed)

    # -- reading ----------------------------------------------------------------------------------
    def rows(self, namespace: str) -> list[Point]:
        with self._lock:
            return list(self.points.get(namespace, []))

    def rows_between(self, namespace: str, start_ms: int, end_ms: int,
                     keep: Callable[[str, dict], bool] | None = None) -> list[Point]:
        """Rows of a Guance namespace (M, T, L, E) with start <= time <= end; what DQL reads.
        ``keep(measurement, tags)``: only the metric series it accepts (a query's selectors), so a
        query over minutes of 2 s scrapes does not replay every series of every namespace."""
        if namespace == "M":
            return self.metric_points(start_ms, end_ms, keep)
        return [p for p in self.rows(namespace) if start_ms <= p.time <= end_ms]

    def metric_points(self, start_ms: int, end_ms: int, keep: Callable[[str, dict], bool] | None = None) -> list[Point]:
        """`istio_prom` scrapes at every multiple of the scrape interval in [start, end], cumulative."""
        step = self.scrape_interval_ms
        first = -(-start_ms // step) * step
        grid = list(range(first, end_ms + 1, step))
        kept: dict[tuple, bool] = {}

        def wanted(key: tuple) -> bool:
            if keep is None:
                return True
            if key not in kept:
                kept[key] = keep(MEASUREMENT, _series_tags(key))
            return kept[key]

        with self._lock:
            series = {k: _copy(s) for k, s in self._base.items() if wanted(k)}
            requests = [r for r in self._requests if r[0] <= end_ms and wanted(r[1])]
            written = [p for p in self.points.get("M", []) if start_ms <= p.time <= end_ms]
        out: list[Point] = []
        i = 0
        for t in grid:
            while i < len(requests) and requests[i][0] <= t:
                _time, key, duration = requests[i]
                series.setdefault(key, _Series()).add(duration)
                i += 1
            for key, s in series.items():
                out.extend(_scrape_points(key, s, t))
        out.extend(p for p in written if keep is None or keep(p.measurement, p.tags))
        return out

    def totals(self) -> dict[tuple, _Series]:
        with self._lock:
            return {k: _copy(s) for k, s in self._totals.items()}

    def prometheus_text(self) -> str:
        """The Prometheus text exposition (format 0.0.4) of the Istio metrics, current totals."""
        lines = [f"# HELP {REQUESTS_TOTAL} Total requests.", f"# TYPE {REQUESTS_TOTAL} counter"]
        totals = sorted(self.totals().items())
        for key, s in totals:
            lines.append(f"{REQUESTS_TOTAL}{{{_label_text(key)}}} {s.count}")
        lines += [f"# HELP {DURATION} Request duration in milliseconds.", f"# TYPE {DURATION} histogram"]
        for key, s in totals:
            labels = _label_text(key)
            for le, value in zip(LE_TAGS, s.buckets):
                lines.append(f'{DURATION}_bucket{{{labels},le="{le}"}} {value}')
            lines.append(f"{DURATION}_sum{{{labels}}} {_num(s.total_ms)}")
            lines.append(f"{DURATION}_count{{{labels}}} {s.count}")
        return "\n".join(lines) + "\n"


def _copy(s: _Series) -> _Series:
    return _Series(s.count, s.total_ms, list(s.buckets))


def _num(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(key: tuple) -> str:
    return ",".join(f'{name}="{_escape(value)}"' for name, value in zip(LABELS, key))


def _series_tags(key: tuple) -> dict:
    tags = dict(zip(LABELS, key))
    # DataKit's inputs.prom adds the scraped pod's namespace as a tag (`[inputs.prom.tags]`).
    tags["namespace"] = tags["destination_workload_namespace"] if tags["reporter"] == "destination" \
        else tags["source_workload_namespace"]
    return tags


def _scrape_points(key: tuple, s: _Series, t: int) -> Iterator[Point]:
    tags = _series_tags(key)
    yield Point(MEASUREMENT, tags, {REQUESTS_TOTAL: s.count, f"{DURATION}_sum": s.total_ms,
                                    f"{DURATION}_count": s.count}, t)
    for le, value in zip(LE_TAGS, s.buckets):
        yield Point(MEASUREMENT, dict(tags, le=le), {f"{DURATION}_bucket": value}, t)


def parse_prometheus_text(text: str) -> Iterable[tuple[str, dict, float]]:
    """(name, labels, value) for each sample line; enough to check our own exposition in tests."""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        name, _sep, rest = head.partition("{")
        labels = {}
        for part in rest.rstrip("}").split('",') if rest else []:
            k, v = part.split('="', 1)
            labels[k] = v.rstrip('"')
        yield name, labels, float(value)
