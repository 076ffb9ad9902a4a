"""Asking every worker of the deployment: for answers no single worker holds (top products).

The workers are the members of the window stage's consumer group, as the group coordinator
describes them: each member's client id carries its web URL after the window stage's prefix
(`tables.stage_links.stages.member_prefix`), and its assignment says which worker partitions
it owns. This worker answers its own share in-process; the others over HTTP, with the
deployment's token. A share names the partitions it covered, so the caller can tell a complete
answer from one missing partitions mid-rebalance.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.group import MemberAssignment
from faust.types import AppT
from yarl import URL

from app.faust_app import settings_of
from app.settings import Settings
from tables.stage_links import stages
from tables.web.guard import Unavailable

logger = logging.getLogger(__name__)

PEER_TIMEOUT_S = 5.0
MEMBERS_FRESH_S = 2.0
Share = dict[str, Any]


@dataclass(frozen=True)
class Member:
    """One worker of the deployment: its web URL and the worker partitions it owns."""

    url: str
    partitions: frozenset[int]


class GroupMembers:
    """The window stage's group members, asked of the coordinator at most every few seconds."""

    def __init__(self) -> None:
        self.admin: AIOKafkaAdminClient | None = None
        self.members: list[Member] = []
        self.at = 0.0

    async def current(self, settings: Settings) -> list[Member]:
        """The members of WINDOWS_GROUP on KAFKA_BOOTSTRAP_SERVERS; [] where no window stage
        runs. Raises what the admin client raises when the coordinator does not answer."""
        if time.monotonic() - self.at < MEMBERS_FRESH_S:
            return self.members
        prefix = stages.member_prefix
        if prefix is None:  # no window stage in this process: no group to describe
            return []
        if self.admin is None:
            self.admin = AIOKafkaAdminClient(
                bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=5000
            )
            await self.admin.start()
        try:
            (response,) = await self.admin.describe_consumer_groups([settings.windows_group])
        except Exception:
            admin, self.admin = self.admin, None
            await admin.close()
            raise
        members = []
        for group in response.to_object()["groups"]:
            for member in group["members"]:
                client_id = str(member["client_id"])
                if not client_id.startswith(prefix) or not member["member_assignment"]:
                    continue
                assignment = MemberAssignment.decode(member["member_assignment"])
                owned = {p for topic, parts in assignment.assignment for p in parts}
                members.append(Member(client_id.removeprefix(prefix), frozenset(owned)))
        self.members, self.at = members, time.monotonic()
        return members


group_members = GroupMembers()


def _ident(url: URL | str) -> tuple[str, int]:
    parsed = URL(str(url))
    return (parsed.host or "", parsed.port or 80)


def is_self(app: AppT, url: str) -> bool:
    """`url` is this worker's own (the app's canonical URL), by host and port."""
    return _ident(url) == _ident(app.conf.canonical_url)


async def peer_urls(app: AppT) -> list[str]:
    """Base URLs of the other workers in the group."""
    members = await group_members.current(settings_of(app))
    return sorted({m.url for m in members if not is_self(app, m.url)})


async def owner_url(app: AppT, partition: int) -> str | None:
    """Base URL of the worker that owns a worker partition, if the group says one does."""
    for member in await group_members.current(settings_of(app)):
        if partition in member.partitions:
            return member.url
    return None


async def ask_peer(app: AppT, base: str, path: str, params: Mapping[str, str]) -> Share:
    """GET `path` of the worker at `base` with the deployment's token; Unavailable unless 200."""
    settings = settings_of(app)
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
    app: AppT, local: Callable[[], Awaitable[Share]], path: str, params: Mapping[str, str]
) -> list[Share]:
    """Every worker's share: this one's from `local`, the others' from GET `path`."""
    try:
        peers = await peer_urls(app)
    except Exception as exc:
        msg = f"the deployment's workers could not be listed ({exc}); retry shortly"
        raise Unavailable(msg, retry=True) from exc
    results = await asyncio.gather(
        local(), *(ask_peer(app, base, path, params) for base in peers), return_exceptions=True
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


def require_all_partitions(shares: list[Share], partitions: int) -> None:
    """Refuse (Unavailable) an answer that misses or doubles any of the `partitions` worker
    partitions (PARTITIONS): a rebalance or recovery is under way."""
    claims = [int(p) for share in shares for p in share.get("partitions", ())]
    twice = sorted({p for p in claims if claims.count(p) > 1})
    if twice:
        msg = f"partitions {twice} are claimed by two workers (a rebalance); retry shortly"
        raise Unavailable(msg, retry=True)
    missing = sorted(set(range(partitions)) - set(claims))
    if missing:
        msg = (
            f"partitions {missing} are not served by any worker right now "
            "(a rebalance or table recovery is under way); retry shortly"
        )
        raise Unavailable(msg, retry=True, missing_partitions=missing)
