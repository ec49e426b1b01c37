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


def get_with_retries(
    client: httpx.Client, path: str, params: dict, retries: int, what: str
) -> bytes:
    """GET with up to `retries` more tries on timeouts and 429/5xx, backing off 0.5 s, 1 s, 2 s."""
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
        try:
            resp = client.get(path, params=params)
        except httpx.TimeoutException:
            last = f"timed out after {client.timeout.read}s"
            log.warning("%s: %s (try %d of %d)", what, last, attempt + 1, retries + 1)
            continue
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
            log.warning("%s: %s (try %d of %d)", what, last, attempt + 1, retries + 1)
            continue
        if resp.status_code in RETRY_STATUS:
            last = f"HTTP {resp.status_code}"
            log.warning("%s: %s (try %d of %d)", what, last, attempt + 1, retries + 1)
            continue
        if resp.status_code != 200:
            snippet = resp.text[:300].replace("\n", " ")
            raise SourceHttpError(f"{what}: HTTP {resp.status_code} from {path}: {snippet}")
        return resp.content
    raise SourceHttpError(f"{what}: gave up after {retries + 1} tries: {last}")
