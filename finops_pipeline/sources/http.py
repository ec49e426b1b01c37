"""HTTP for the source APIs: one httpx client per call site, bounded retries, no secrets in logs."""

from __future__ import annotations

import logging
import time

import httpx

from finops_pipeline.config import bearer_token

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 502, 503, 504}


class SourceHttpError(RuntimeError):
    """A source API could not be read; the message names the source and the cause, not the token."""


def api_client(base_url: str, token_env: str | None, verify: bool, timeout: float) -> httpx.Client:
    headers = {"Accept": "application/json", "User-Agent": "finops-pipeline"}
    token = bearer_token(token_env)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    # The transport retries refused and reset connections; status-level retries are below.
    transport = httpx.HTTPTransport(retries=2, verify=verify)
    return httpx.Client(
        base_url=base_url,
        headers=headers,
        timeout=timeout,
        transport=transport,
        follow_redirects=False,
    )


# A server may ask for a pause (Retry-After on 429/503); longer asks than this are cut to it.
MAX_RETRY_AFTER_SECONDS = 60.0


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    return None  # the HTTP-date form is rare for APIs; the backoff applies


def _get_within(client: httpx.Client, path: str, params: dict, deadline: float):
    """One GET whose whole answer, body included, must arrive within `deadline` seconds: httpx's
    timeouts bound each read, so a server trickling bytes would otherwise hold a run forever."""
    end = time.monotonic() + deadline
    with client.stream("GET", path, params=params) as resp:
        body = bytearray()
        for chunk in resp.iter_bytes():
            body += chunk
            if time.monotonic() > end:
                raise httpx.ReadTimeout(f"answer not complete after {deadline:g}s")
        return resp, bytes(body)


def get_with_retries(
    client: httpx.Client, path: str, params: dict, retries: int, what: str
) -> bytes:
    """GET with up to `retries` more tries on timeouts, transport errors and 429/502/503/504,
    backing off 0.5 s, 1 s, 2 s (or as long as Retry-After asks, up to a minute)."""
    deadline = client.timeout.read or 30.0
    last = ""
    pause = 0.0
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(pause or min(0.5 * 2 ** (attempt - 1), 8.0))
        pause = 0.0
        try:
            resp, body = _get_within(client, path, params, deadline)
        except httpx.TimeoutException as exc:
            last = f"timed out ({exc or f'{deadline:g}s'})"
            log.warning("%s: %s (try %d of %d)", what, last, attempt + 1, retries + 1)
            continue
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
            log.warning("%s: %s (try %d of %d)", what, last, attempt + 1, retries + 1)
            continue
        if resp.status_code in RETRY_STATUS:
            last = f"HTTP {resp.status_code}"
            pause = _retry_after(resp) or 0.0
            log.warning("%s: %s (try %d of %d)", what, last, attempt + 1, retries + 1)
            continue
        if resp.status_code != 200:
            snippet = body[:300].decode("utf-8", "replace").replace("\n", " ")
            raise SourceHttpError(f"{what}: HTTP {resp.status_code} from {path}: {snippet}")
        return body
    raise SourceHttpError(f"{what}: gave up after {retries + 1} tries: {last}")
