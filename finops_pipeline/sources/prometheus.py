"""Prometheus HTTP API: range queries evaluated once per hour, each answering for that hour alone.

An hour [h, h+1h) is asked at h+3599.999 s with `[1h]` range functions: the range selector then
covers the samples stamped h .. h+59:59.999, so a sample on the boundary belongs to one hour only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec

from finops_pipeline.config import PrometheusApi
from finops_pipeline.sources.http import api_client, get_with_retries

HOUR = 3600
# Prometheus refuses more than 11,000 points per series; a week of hours is 168.
MAX_HOURS_PER_QUERY = 24 * 7


class PromSeries(msgspec.Struct):
    metric: dict[str, str]
    values: list[tuple[float, str]] = []


class PromData(msgspec.Struct):
    resultType: str
    result: list[PromSeries]


class PromResponse(msgspec.Struct):
    status: str
    data: PromData | None = None
    errorType: str | None = None
    error: str | None = None
    warnings: list[str] | None = None


class PrometheusQueryError(RuntimeError):
    """Prometheus answered with status error, or with something that is not a matrix."""


@dataclass(frozen=True)
class Point:
    labels: dict[str, str]
    hour: datetime
    value: float  # may be NaN or +-Inf exactly as Prometheus sent it
    text: str


def parse_matrix(body: bytes, what: str) -> list[PromSeries]:
    try:
        resp = msgspec.json.decode(body, type=PromResponse)
    except msgspec.DecodeError as exc:
        raise PrometheusQueryError(f"{what}: response is not Prometheus JSON: {exc}") from None
    if resp.status != "success":
        raise PrometheusQueryError(f"{what}: {resp.errorType or 'error'}: {resp.error or ''}")
    if resp.warnings:
        # Thanos, Mimir and federated setups warn when some stores did not answer: the numbers
        # would be short, and a short cost is worse than a failed run that can be retried.
        raise PrometheusQueryError(
            f"{what}: answer came with warnings, not used: {'; '.join(resp.warnings)[:500]}"
        )
    if resp.data is None or resp.data.resultType != "matrix":
        kind = resp.data.resultType if resp.data else "nothing"
        raise PrometheusQueryError(f"{what}: expected a matrix, got {kind}")
    return resp.data.result


def hour_chunks(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    step = timedelta(hours=MAX_HOURS_PER_QUERY)
    t = start
    while t < end:
        yield t, min(t + step, end)
        t += step


class PrometheusClient:
    def __init__(self, api: PrometheusApi, cluster: str):
        self.api = api
        self.cluster = cluster
        self._client = api_client(
            str(api.url), api.bearer_token_env, api.verify_tls, api.timeout_seconds
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def selector(self, *matchers: str) -> str:
        parts = [m for m in (self.api.selector, *matchers) if m]
        return "{" + ",".join(parts) + "}"

    def hourly(self, expr: str, start: datetime, end: datetime) -> list[Point]:
        """Evaluate `expr` (written with [1h] range functions) for each hour in [start, end)."""
        points: list[Point] = []
        for a, b in hour_chunks(start, end):
            params = {
                "query": expr,
                "start": f"{a.timestamp() + HOUR - 0.001:.3f}",
                "end": f"{b.timestamp() - 0.001:.3f}",
                "step": f"{HOUR}",
            }
            what = f"{self.cluster} prometheus {expr[:80]}"
            body = get_with_retries(
                self._client, "/api/v1/query_range", params, self.api.retries, what
            )
            for s in parse_matrix(body, what):
                for ts, text in s.values:
                    hour = datetime.fromtimestamp(math.floor(ts / HOUR) * HOUR, UTC)
                    try:
                        value = float(text)
                    except ValueError:
                        raise PrometheusQueryError(
                            f"{what}: sample value {text[:40]!r} at {ts} is not a number"
                        ) from None
                    points.append(Point(s.metric, hour, value, text))
        return points
