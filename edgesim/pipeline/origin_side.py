"""The origin side of a cache miss: origin-request, the origin fetch, origin-response.

:meth:`OriginSide.fetch` forwards the request as CloudFront would under the behavior's policies
(or the legacy rules without a cache policy), runs the origin-request function (which may switch
the origin or answer itself), fetches from the origin with origin-group failover, filters ``Vary``
and runs the origin-response function. An origin that cannot be reached becomes CloudFront's
502/504 page here, so the cache stage can treat it like any 5xx.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from edgesim.cache.key import forwarding as policy_forwarding
from edgesim.cache.policies import CachePolicy
from edgesim.cache.ttl import viewer_vary
from edgesim.config import BehaviorConfig, Distribution
from edgesim.exceptions import OriginError
from edgesim.http import EdgeRequest, EdgeResponse, Headers
from edgesim.lambda_edge.triggers import Triggers, elapsed_ms
from edgesim.origins import forwarding
from edgesim.origins.fetcher import OriginFetcher
from edgesim.origins.targets import OriginTarget
from edgesim.pages import error_response, origin_error_page
from edgesim.trace import Stage, Trace, TraceRecord

__all__ = ["ERROR", "GENERATED", "MISS", "Fetched", "OriginSide"]

GENERATED = "LambdaGeneratedResponse from cloudfront"
MISS = "Miss from cloudfront"
ERROR = "Error from cloudfront"


@dataclass(frozen=True)
class Fetched:
    """An answer for the viewer and its ``X-Cache`` label."""

    response: EdgeResponse
    x_cache: str
    age: int | None = None  # set when the answer is a stored object (RefreshHit)


class OriginSide:
    """Origin-side triggers and origin fetches for one distribution."""

    def __init__(
        self,
        distribution: Distribution,
        *,
        triggers: Triggers,
        fetcher: OriginFetcher,
        targets: Mapping[str, OriginTarget],
        edge_id: str,
    ) -> None:
        self._distribution = distribution
        self._triggers = triggers
        self._fetcher = fetcher
        self._targets = dict(targets)
        self._edge_id = edge_id

    async def fetch(
        self,
        request: EdgeRequest,
        behavior: BehaviorConfig,
        policy: CachePolicy | None,
        trace: Trace,
        *,
        validators: Headers | None = None,
    ) -> Fetched:
        """Origin-request, the origin (with group failover), origin-response."""
        group = self._distribution.origin_groups.get(behavior.origin)
        members = [group.primary, group.secondary] if group else [behavior.origin]
        can_fail_over = request.method in ("GET", "HEAD", "OPTIONS")
        response: EdgeResponse | None = None
        for attempt, origin_id in enumerate(members):
            last = attempt == len(members) - 1 or not can_fail_over
            target = self._targets[origin_id]
            outbound, sent = self._outbound(request, target, behavior, policy, trace, validators)
            result = await self._triggers.origin_request(behavior, outbound, target, trace)
            if isinstance(result, EdgeResponse):
                # Generated at origin-request: origin-response does not run.
                return Fetched(result, GENERATED)
            outbound, target = result
            started = time.perf_counter()
            try:
                response = await self._fetcher.fetch(outbound, target)
            except OriginError as error:
                trace.add(TraceRecord(Stage.ORIGIN, f"error-{error.status}", detail=error.reason))
                if last:
                    page = origin_error_page(error)
                    head = request.method == "HEAD"
                    return Fetched(error_response(page, trace.request_id, head=head), ERROR)
                continue
            trace.add(TraceRecord(Stage.ORIGIN, str(response.status), elapsed_ms(started)))
            if policy is not None and "vary" in response.headers:
                # The viewer sees only the Vary names CloudFront keeps (spec §3.7).
                vary = viewer_vary(response.headers, sent)
                response.headers.remove("Vary")
                if vary is not None:
                    response.headers.add("Vary", vary)
            response = await self._triggers.origin_response(
                behavior, outbound, target, response, trace
            )
            if last or group is None or response.status not in group.status_codes:
                break
        assert response is not None
        return Fetched(response, ERROR if response.status >= 400 else MISS)

    def _outbound(
        self,
        request: EdgeRequest,
        target: OriginTarget,
        behavior: BehaviorConfig,
        policy: CachePolicy | None,
        trace: Trace,
        validators: Headers | None,
    ) -> tuple[EdgeRequest, Callable[[str], bool]]:
        """The request as CloudFront forwards it under the behavior's policies, and which
        viewer headers (lowercase names) it forwards."""
        if policy is None:
            legacy = forwarding.to_origin(
                request, target, request_id=trace.request_id, edge_id=self._edge_id
            )
            return legacy, lambda name: name in legacy.headers
        plan = policy_forwarding(
            policy,
            behavior.origin_request_policy_resolved,
            request,
            s3_origin=target.kind == "s3",
            cached_methods=behavior.cached_methods,
        )
        outbound = forwarding.to_origin(
            request,
            target,
            request_id=trace.request_id,
            edge_id=self._edge_id,
            forward=plan.header_allowed,
        )
        headers = outbound.headers
        headers.remove("Cookie")
        if plan.cookie:
            headers.add("Cookie", plan.cookie)
        if plan.accept_encoding is not None:
            headers.set("Accept-Encoding", plan.accept_encoding)
        for name, value in validators or ():
            headers.set(name, value)
        return replace(outbound, headers=headers, querystring=plan.querystring), plan.header_allowed
