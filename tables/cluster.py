"""Asking every worker of the deployment: for answers no single worker holds (top products).

The workers are the members of the consumer group as Faust's partition assignor last shared
them (each with its canonical URL). This worker answers its own share in-process; the others
over HTTP, with the deployment's token. A share names the partitions it covered, so the caller
can tell a complete answer from one missing partitions mid-rebalance.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from yarl import URL

from app.faust_app import get_app
from app.settings import get_settings
from tables.web_guard import Unavailable

logger = logging.getLogger(__name__)
app = get_app()
settings = get_settings()

PEER_TIMEOUT_S = 5.0
Share = dict[str, Any]


def _ident(url: URL | str) -> tuple[str, int]:
    parsed = URL(str(url))
    return (parsed.host or "", parsed.port or 80)


def peer_urls() -> list[str]:
    """Base URLs of the other workers in the group."""
    own = _ident(app.conf.canonical_url)
    urls = {str(url) for url in app.router.tables_metadata()}
    return sorted(url for url in urls if _ident(url) != own)


async def ask_peer(base: str, path: str, params: Mapping[str, str]) -> Share:
    headers = {}
    if settings.web_token is not None:
        headers["Authorization"] = f"Bearer {settings.web_token.get_secret_value()}"
    url = URL(base).with_path(path).with_query(dict(params))
    timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
    async with app.http_client.get(url, headers=headers, timeout=timeout) as response:
        body = await response.json(content_type=None)
        if response.status != 200:
            msg = f"worker {base} answered {response.status}: {body.get('error', body)}"
            raise Unavailable(msg, retry=True)
        return dict(body)


async def gather_shares(
    local: Callable[[], Awaitable[Share]], path: str, params: Mapping[str, str]
) -> list[Share]:
    """Every worker's share: this one's from `local`, the others' from GET `path`."""
    peers = peer_urls()
    results = await asyncio.gather(
        local(), *(ask_peer(base, path, params) for base in peers), return_exceptions=True
    )
    shares: list[Share] = []
    for base, result in zip(["this worker", *peers], results, strict=True):
        if isinstance(result, Unavailable):
            raise result
        if isinstance(result, BaseException):
            logger.warning("worker %s did not answer %s: %s", base, path, result)
            msg = f"worker {base} did not answer; retry shortly"
            raise Unavailable(msg, retry=True)
        shares.append(result)
    return shares


def require_all_partitions(shares: list[Share]) -> None:
    """Refuse an answer that misses or doubles partitions (a rebalance or recovery)."""
    claims = [int(p) for share in shares for p in share.get("partitions", ())]
    twice = sorted({p for p in claims if claims.count(p) > 1})
    if twice:
        msg = f"partitions {twice} are claimed by two workers (a rebalance); retry shortly"
        raise Unavailable(msg, retry=True)
    missing = sorted(set(range(settings.partitions)) - set(claims))
    if missing:
        msg = (
            f"partitions {missing} are not served by any worker right now "
            "(a rebalance or table recovery is under way); retry shortly"
        )
        raise Unavailable(msg, retry=True, missing_partitions=missing)
