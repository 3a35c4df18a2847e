"""The models of a distribution file, with CloudFront's rules checked where each value is declared.

Every model is frozen: a distribution is validated once, when it is loaded, and never changes
while the edge runs. The checks themselves are in :mod:`edgesim.config.values`; their problems
are meant for the user as is, and :mod:`edgesim.config.load` turns the first one into a
:class:`~edgesim.exceptions.ConfigError` naming the file and the key path. Rules that need the
whole distribution (references between sections, per-trigger quotas) are run by
:class:`edgesim.config.load.Distribution`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, cast
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PrivateAttr,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from edgesim.cache.policies import (
    CachePolicy,
    OriginRequestPolicy,
    PolicyError,
    parse_cache_policy,
    parse_origin_request_policy,
)
from edgesim.config.values import (
    CACHED_METHOD_SETS,
    DISTRIBUTION_ID,
    ERROR_CODES,
    FAILOVER_STATUS_CODES,
    FUNCTION_NAME,
    METHOD_SETS,
    PATH_PATTERN,
    POP,
    RESPONSE_CODES,
    ROOT_OBJECT,
    RUNTIME,
    RUNTIMES,
    Aliases,
    Folder,
    Hostname,
    Policy,
    bad_function_name,
    bucket_domain,
    check_custom_headers,
    checked,
    handler_problem,
    in_range,
    invalid,
    like,
    methods,
    origin_path_problem,
    url_problem,
)
from edgesim.http import Headers
from edgesim.origins.targets import OriginTarget
from edgesim.quotas import function_memory_mb, function_timeout_s
from edgesim.runtime.spec import ACCOUNT_CONCURRENCY, DEFAULT_IDLE_TIMEOUT_S, DEFAULT_MAX_WORKERS
from edgesim.types import EventType

__all__ = [
    "BehaviorConfig",
    "ConfigModel",
    "CustomErrorResponse",
    "DistributionSettings",
    "FunctionAssociation",
    "FunctionConfig",
    "OriginConfig",
    "OriginGroupConfig",
]


class ConfigModel(BaseModel):
    """Frozen, closed to unknown keys, and naming the allowed keys when one is wrong."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys_only(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            allowed = list(cls.model_fields)
            for key in data:
                if key not in allowed:
                    raise invalid(f"unknown key; allowed keys: {', '.join(allowed)}", str(key))
        return data


class FunctionConfig(ConfigModel):
    """A Lambda@Edge function: its code folder, runtime, handler and quotas."""

    name: Annotated[StrictStr, like(FUNCTION_NAME, bad_function_name("{value}"))]
    runtime: Annotated[
        StrictStr,
        like(RUNTIME, f"unsupported runtime {{value}}; supported: {', '.join(RUNTIMES)}"),
    ]
    code: Folder
    handler: Annotated[StrictStr, checked(handler_problem)]
    # The widest any trigger allows; each association is then held to its trigger's quotas.
    memory: Annotated[StrictInt, in_range("memory", *function_memory_mb(), "MB")] = 128
    timeout: Annotated[StrictInt, in_range("timeout", *function_timeout_s(), "s")] = 3
    reserved_concurrency: (
        Annotated[StrictInt, in_range("reserved_concurrency", 0, ACCOUNT_CONCURRENCY)] | None
    ) = None
    """Lambda's reserved concurrency: invocations beyond it are throttled. Unset, the function
    shares the account's 1,000 unreserved concurrent executions, as in Lambda."""
    workers: Annotated[StrictInt, in_range("workers", 1, ACCOUNT_CONCURRENCY)] = DEFAULT_MAX_WORKERS
    """This machine's cap on the function's workers; invocations beyond it wait for one."""
    idle_timeout: Annotated[StrictInt, in_range("idle_timeout", 1, 86400, "s")] = int(
        DEFAULT_IDLE_TIMEOUT_S
    )
    """Seconds an idle worker is kept before it is retired."""


class FunctionAssociation(ConfigModel):
    """A function attached to one trigger of a behavior."""

    function: StrictStr
    include_body: StrictBool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"function": data}
        if not isinstance(data, Mapping | FunctionAssociation):
            raise invalid(
                "must be a function name or a mapping {function: NAME, include_body: BOOL}"
            )
        return data


class OriginConfig(ConfigModel):
    """An origin: a local folder served like an S3 bucket (``s3``), or an HTTP server (``url``).

    ``domain_name`` is, for ``s3``, the bucket domain functions see (``<id>.s3.amazonaws.com``
    by default); for ``url``, an optional host name shown to functions and sent as ``Host``
    instead of the URL's host, which is still the address dialled.
    """

    id: StrictStr
    s3: Folder | None = None
    url: Annotated[StrictStr, checked(url_problem)] | None = None
    domain_name: Hostname | None = None
    path: Annotated[StrictStr, checked(origin_path_problem)] = ""
    custom_headers: Annotated[dict[str, StrictStr], AfterValidator(check_custom_headers)] = {}
    read_timeout: Annotated[StrictInt, in_range("read_timeout", 1, 120, "s")] = 30
    keepalive_timeout: Annotated[StrictInt, in_range("keepalive_timeout", 1, 120, "s")] = 5
    connection_attempts: Annotated[StrictInt, in_range("connection_attempts", 1, 3)] = 3
    connection_timeout: Annotated[StrictInt, in_range("connection_timeout", 1, 10, "s")] = 10

    @model_validator(mode="before")
    @classmethod
    def _defaultbucket_domain(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("s3") is not None and "domain_name" not in data:
            if isinstance(data.get("id"), str):
                return {**data, "domain_name": bucket_domain(data["id"])}
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> OriginConfig:
        if (self.s3 is None) == (self.url is None):
            which = "both are set" if self.s3 is not None else "neither is set"
            raise invalid(
                f"set exactly one of s3 (a local folder) or url (an HTTP origin); {which}"
            )
        return self

    def target(self) -> OriginTarget:
        """This origin as a Lambda@Edge event describes it, before any function changes it."""
        headers = Headers(self.custom_headers.items())
        if self.s3 is not None:
            return OriginTarget(
                kind="s3",
                domain_name=self.domain_name or bucket_domain(self.id),
                path=self.path,
                custom_headers=headers,
                read_timeout=self.read_timeout,
                local_root=self.s3,
                origin_id=self.id,
                connection_attempts=self.connection_attempts,
                connection_timeout=float(self.connection_timeout),
            )
        parts = urlsplit(self.url or "")
        protocol: Literal["http", "https"] = "https" if parts.scheme == "https" else "http"
        host = parts.hostname or ""
        shown = self.domain_name or host
        return OriginTarget(
            kind="custom",
            domain_name=shown,
            path=self.path,
            custom_headers=headers,
            port=parts.port or (443 if protocol == "https" else 80),
            protocol=protocol,
            read_timeout=self.read_timeout,
            keepalive_timeout=self.keepalive_timeout,
            connect_host=host if shown != host else None,
            origin_id=self.id,
            connection_attempts=self.connection_attempts,
            connection_timeout=float(self.connection_timeout),
        )


class OriginGroupConfig(ConfigModel):
    """A failover pair: the secondary is tried when the primary fails with a listed status."""

    id: StrictStr
    primary: StrictStr
    secondary: StrictStr
    status_codes: tuple[StrictInt, ...]

    @field_validator("status_codes")
    @classmethod
    def _codes(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        allowed = ", ".join(map(str, FAILOVER_STATUS_CODES))
        if not value:
            raise invalid(f"list at least one failover status code from: {allowed}")
        for index, code in enumerate(value):
            if code not in FAILOVER_STATUS_CODES:
                raise invalid(f"{code} cannot trigger failover; allowed: {allowed}", index)
            if code in value[:index]:
                raise invalid(f"{code} is listed twice", index)
        return value

    @model_validator(mode="after")
    def _two_members(self) -> OriginGroupConfig:
        if self.primary == self.secondary:
            raise invalid(f"primary and secondary are both {self.primary!r}", "secondary")
        return self


def _parsed(parse: Callable[[Any], object]) -> AfterValidator:
    """Hold a policy value to CloudFront's rules, reporting the sub-key at fault."""

    def check(value: Any) -> Any:
        if value is not None:
            try:
                parse(value)
            except PolicyError as error:
                raise invalid(error.problem, *error.at) from None
        return value

    return AfterValidator(check)


class BehaviorConfig(ConfigModel):
    """A cache behavior: which requests it takes, where they go and what runs on them.

    ``cache_policy`` and ``origin_request_policy`` are kept as written (a managed policy name or
    an inline mapping, see :mod:`edgesim.cache.policies`), checked when the file loads;
    :attr:`cache_policy_resolved` and :attr:`origin_request_policy_resolved` are the policies
    they name.
    """

    path_pattern: Annotated[StrictStr, PATH_PATTERN]
    origin: StrictStr
    viewer_protocol_policy: Literal["allow-all", "redirect-to-https", "https-only"] = "allow-all"
    allowed_methods: Annotated[tuple[str, ...], methods(METHOD_SETS)] = METHOD_SETS[0]
    cached_methods: Annotated[tuple[str, ...], methods(CACHED_METHOD_SETS)] = METHOD_SETS[0]
    compress: StrictBool = False
    cache_policy: Annotated[Policy, _parsed(parse_cache_policy)] = None
    origin_request_policy: Annotated[Policy, _parsed(parse_origin_request_policy)] = None
    functions: dict[EventType, FunctionAssociation] = {}

    @field_validator("functions", mode="before")
    @classmethod
    def _event_types(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            known = [str(e) for e in EventType]
            for key in value:
                if str(key) not in known:
                    raise invalid(f"unknown trigger; allowed: {', '.join(known)}", str(key))
        return value

    _cache_policy: CachePolicy | None = PrivateAttr(None)
    _origin_request_policy: OriginRequestPolicy | None = PrivateAttr(None)

    def model_post_init(self, context: Any, /) -> None:
        """Resolve the policies once; the field validators have already accepted them."""
        if self.cache_policy is not None:
            self._cache_policy = parse_cache_policy(self.cache_policy)
        if self.origin_request_policy is not None:
            self._origin_request_policy = parse_origin_request_policy(self.origin_request_policy)

    # Both read pydantic's private store directly: through the attribute, pydantic's
    # __getattr__ costs about 2 us a read, and each request reads them several times.

    @property
    def cache_policy_resolved(self) -> CachePolicy | None:
        """The cache policy ``cache_policy`` names or describes; ``None`` when there is none."""
        return cast("CachePolicy | None", self._private["_cache_policy"])

    @property
    def origin_request_policy_resolved(self) -> OriginRequestPolicy | None:
        """The origin request policy, or ``None`` when the behavior has none."""
        return cast("OriginRequestPolicy | None", self._private["_origin_request_policy"])

    @property
    def _private(self) -> dict[str, Any]:
        private = self.__pydantic_private__
        assert private is not None  # a model with private attributes always has the store
        return private

    @model_validator(mode="after")
    def _combinations(self) -> BehaviorConfig:
        if self.origin_request_policy is not None and self.cache_policy is None:
            raise invalid(
                "an origin request policy needs a cache_policy beside it, as in CloudFront "
                "(behaviors without one use legacy forwarding)",
                "origin_request_policy",
            )
        if not set(self.cached_methods) <= set(self.allowed_methods):
            raise invalid(
                f"cached methods {','.join(self.cached_methods)} must be among the allowed "
                f"methods {','.join(self.allowed_methods)}",
                "cached_methods",
            )
        for event_type, association in self.functions.items():
            if association.include_body and not event_type.is_request:
                raise invalid(
                    "include_body is allowed only on viewer-request and origin-request, "
                    f"not on {event_type}",
                    *("functions", str(event_type), "include_body"),
                )
        return self

    def association(self, event_type: EventType) -> FunctionAssociation | None:
        """The function attached to ``event_type`` on this behavior, if any."""
        return self.functions.get(event_type)


class CustomErrorResponse(ConfigModel):
    """What the viewer gets instead of an error: another page, another status code, or both."""

    error_code: StrictInt
    response_page_path: StrictStr | None = None
    response_code: StrictInt | None = None
    error_caching_min_ttl: Annotated[StrictInt, in_range("error_caching_min_ttl", 0, 31536000)] = 10

    @model_validator(mode="after")
    def _consistent(self) -> CustomErrorResponse:
        codes, returned = ", ".join(map(str, ERROR_CODES)), ", ".join(map(str, RESPONSE_CODES))
        if self.error_code not in ERROR_CODES:
            raise invalid(
                f"{self.error_code} cannot have a custom response; allowed: {codes}", "error_code"
            )
        if self.response_code is not None and self.response_code not in RESPONSE_CODES:
            raise invalid(
                f"{self.response_code} cannot be returned; allowed: {returned}", "response_code"
            )
        page = self.response_page_path
        if page is not None and not page.startswith("/"):
            raise invalid(f"must start with '/'; got {page!r}", "response_page_path")
        if page is not None and self.response_code is None:
            raise invalid("response_page_path needs a response_code too", "response_code")
        if self.response_code is not None and page is None:
            raise invalid("response_code needs a response_page_path too", "response_page_path")
        return self


class DistributionSettings(ConfigModel):
    """Distribution-wide settings: identity, host names, POP and default root object.

    ``id`` and ``domain_name`` are derived from the file's path when the file leaves them out.
    """

    id: Annotated[
        StrictStr,
        like(
            DISTRIBUTION_ID,
            "id must be uppercase letters and digits, like EDFDVBD6EXAMPLE; got {value}",
        ),
    ]
    domain_name: Hostname
    aliases: Aliases = ()
    pop: Annotated[
        StrictStr,
        like(POP, "pop must look like a CloudFront POP code, like LAX1 or IAD89-C1; got {value}"),
    ] = "LAX1"
    default_root_object: Annotated[StrictStr, ROOT_OBJECT] | None = None
