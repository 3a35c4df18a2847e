"""The mitmproxy front door: every flow goes through the edge, as CloudFront would run it.

Load it into ``mitmdump``, ``mitmproxy`` or ``mitmweb`` (``python -m edgesim.mitm --path``
prints this file's path; ``edgesim mitm FILE`` does all of it)::

    mitmdump -s "$(python -m edgesim.mitm --path)" --set edgesim_distribution=site.yaml

The addon answers each flow in its ``request`` hook: it translates the flow's request to an
:class:`~edgesim.http.EdgeRequest`, hands it to the same :meth:`Edge.dispatch` as ``edgesim
serve``, and sets the edge's response as the flow's, so mitmproxy never contacts the upstream
itself (``edgesim_upstream`` decides whether the edge's origin fetch goes to the distribution's
origins or to the host the viewer asked for). Each flow is annotated (comment, marker, metadata:
:func:`~edgesim.frontdoors.mitm_flows.annotate`) and function logs go to mitmproxy's event log.

The distribution file and its functions' code folders are watched (the same watcher as ``edgesim
serve``): an edit reloads the distribution with fresh workers, once its functions' code loads;
a file or function that no longer loads leaves the previous version serving, with the reason in
the event log. Setting an option to a broken file
is refused with mitmproxy's option error (at start-up mitmproxy then stops, as it does for any
bad option). Workers and origin connections are closed when mitmproxy shuts down or the script
is unloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Iterator
from pathlib import Path

from mitmproxy import addonmanager, exceptions, http, options

from edgesim.cache.store import DEFAULT_CACHE_SIZE
from edgesim.config import Distribution, load_distribution
from edgesim.exceptions import EdgesimError
from edgesim.frontdoors.code_check import check_distribution_code
from edgesim.frontdoors.mitm_edges import EdgeSet
from edgesim.frontdoors.mitm_flows import (
    annotate,
    problem_response,
    to_edge_request,
    to_flow_response,
    upstream_of,
)
from edgesim.frontdoors.watching import DistributionRoots, distribution_roots, watch
from edgesim.mitm import ADDON_PATH
from edgesim.origins.fetcher import OriginFetcher
from edgesim.tasks import spawn
from edgesim.types import OriginClient

__all__ = [
    "ADDON_PATH",
    "CACHE_SIZE",
    "DISTRIBUTION",
    "LOG",
    "LOG_LEVELS",
    "UPSTREAM",
    "EdgesimAddon",
    "addons",
]

DISTRIBUTION = "edgesim_distribution"
UPSTREAM = "edgesim_upstream"
CACHE_SIZE = "edgesim_cache_size"
LOG = "edgesim_log"
# What edgesim sends to mitmproxy's event log, each level adding to the one before.
LOG_LEVELS = ("errors", "functions", "flows")

logger = logging.getLogger("edgesim.mitm")
_flow_logs: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "edgesim_flow_logs", default=None
)


@contextlib.contextmanager
def _collecting_logs() -> Iterator[list[str]]:
    """Function log lines written while this context's flow is served."""
    lines: list[str] = []
    token = _flow_logs.set(lines)
    try:
        yield lines
    finally:
        _flow_logs.reset(token)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class EdgesimAddon:
    """A mitmproxy addon putting one distribution's edge in front of every flow.

    Options (declared in :meth:`load`): ``edgesim_distribution`` (the file), ``edgesim_upstream``
    (the viewer's host is the origin), ``edgesim_cache_size`` (bytes), ``edgesim_log`` (what goes
    to the event log).
    """

    def __init__(self) -> None:
        self._options: options.Options | None = None
        self._origins: OriginClient | None = None
        self._edges: EdgeSet | None = None
        self._retired: list[EdgeSet] = []
        # what the options ask for, and what the serving edges were loaded with
        self._wanted: tuple[str, bool, int] | None = None
        self._settings: tuple[str, bool, int] | None = None
        self._problem: str | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._rewatch = asyncio.Event()  # set when the watched files change with the options
        self.watching = asyncio.Event()
        """Set while the watchers run: edits from then on are seen."""
        self._closing: asyncio.Task[None] | None = None

    # --- mitmproxy's hooks --------------------------------------------------------------------

    def load(self, loader: addonmanager.Loader) -> None:
        """Declare the options; keep mitmproxy's options object rather than reach for ``ctx``."""
        loader.add_option(
            DISTRIBUTION,
            str,
            "",
            "edgesim: the distribution file (YAML or JSON) whose edge serves every flow; "
            "reloaded when it changes. Empty: edgesim stays out of the way.",
        )
        loader.add_option(
            UPSTREAM,
            bool,
            False,
            "edgesim: use the host each flow was headed for (the regular proxy's target, or "
            "the reverse proxy's) as the origin of every behavior, instead of the "
            "distribution's origins.",
        )
        loader.add_option(
            CACHE_SIZE,
            int,
            DEFAULT_CACHE_SIZE,
            "edgesim: the cache's bound in bytes (default 256 MiB).",
        )
        loader.add_option(
            LOG,
            str,
            "functions",
            "edgesim: what goes to the event log: errors (reloads that failed), functions "
            "(and every function's log lines), flows (and one line per flow with its X-Cache "
            "and stages).",
            choices=LOG_LEVELS,
        )
        self._options = loader.master.options

    def configure(self, updated: set[str]) -> None:
        """(Re)load the distribution when one of edgesim's options changed; a file that does
        not load is refused with :class:`~mitmproxy.exceptions.OptionsError`, keeping the
        edge that was serving."""
        self._watch()  # first: a file refused now is loaded once an edit fixes it
        if {DISTRIBUTION, UPSTREAM, CACHE_SIZE} & updated:
            settings = self._wanted = self._read_settings()
            self._rewatch.set()
            if settings != self._settings:
                try:
                    self._swap(settings, self._read(settings))
                except EdgesimError as error:
                    # Kept for the flows when mitmproxy does not roll the option back (a
                    # script loaded while it runs); the watcher waits for the next edit.
                    self._problem = str(error)
                    # mitmproxy's exception classes have untyped constructors.
                    raise exceptions.OptionsError(str(error)) from None  # type: ignore[no-untyped-call]
        opts = self._options
        if (
            self._edges is not None
            and opts is not None
            and "connection_strategy" in opts  # the proxy server's option
            and opts.connection_strategy != "lazy"
        ):
            # The edge fetches from origins itself: mitmproxy must not dial the upstream before
            # the request hook answers (in reverse mode it would, and fail on a made-up host).
            opts.connection_strategy = "lazy"

    def running(self) -> None:
        """Start watching the file, if :meth:`configure` ran before the event loop did."""
        self._watch()

    async def request(self, flow: http.HTTPFlow) -> None:
        """Serve ``flow`` through the edge and set the edge's response as the flow's."""
        if flow.response is not None or self._wanted is None or not self._wanted[0]:
            return  # answered by another addon already, or edgesim is not configured
        edges = self._edges
        if edges is None:
            flow.response = problem_response(self._problem or "no distribution is loaded")
            return
        edges.in_flight += 1
        try:
            try:
                edge = edges.edge_for(upstream_of(flow))
            except EdgesimError as error:
                flow.response = problem_response(str(error))
                return
            with _collecting_logs() as lines:
                result = await edge.dispatch(to_edge_request(flow))
        finally:
            edges.in_flight -= 1
            if edges.retired and edges.in_flight == 0:
                self._close_later(edges)
        flow.response = to_flow_response(
            result,
            http10_viewer=flow.request.http_version == "HTTP/1.0",
            head=flow.request.method == "HEAD",
        )
        annotate(flow, result, lines)
        if self._level("flows"):
            logger.info("edgesim: %s %s %s", flow.request.method, flow.request.url, flow.comment)

    def done(self) -> asyncio.Task[None] | None:
        """Stop every worker and close origin connections.

        A plain method, as mitmproxy calls this hook without awaiting when it unloads the
        script; the closing runs as a task, which mitmproxy awaits when it shuts down.
        """
        if self._closing is None:
            if not _loop_running():
                return None  # no event loop: nothing was ever started
            self._closing = spawn(self._aclose(), name="edgesim-mitm-close")
        return self._closing

    # --- loading and reloading ----------------------------------------------------------------

    def _read_settings(self) -> tuple[str, bool, int]:
        opts = self._options
        if opts is None:
            return "", False, DEFAULT_CACHE_SIZE
        return (
            str(opts.edgesim_distribution),
            bool(opts.edgesim_upstream),
            int(opts.edgesim_cache_size),
        )

    def _level(self, wanted: str) -> bool:
        chosen = str(self._options.edgesim_log) if self._options is not None else "functions"
        return LOG_LEVELS.index(chosen) >= LOG_LEVELS.index(wanted)

    def _read(self, settings: tuple[str, bool, int]) -> Distribution | None:
        """The distribution ``settings`` name (None without a file); raises
        :class:`EdgesimError` when it does not load."""
        file, _, cache_size = settings
        if cache_size < 0:
            raise _SettingError(f"{CACHE_SIZE} must not be negative; got {cache_size}")
        return load_distribution(Path(file).expanduser()) if file else None

    def _swap(self, settings: tuple[str, bool, int], distribution: Distribution | None) -> None:
        """Serve ``distribution`` from now on; the edges serving until now retire."""
        file, upstream, cache_size = settings
        new: EdgeSet | None = None
        if distribution is not None:
            if self._origins is None:
                self._origins = OriginFetcher()
            new = EdgeSet(
                distribution,
                upstream=upstream,
                cache_size=cache_size,
                origins=self._origins,
                log_sink=self._function_log,
            )
        old, self._edges = self._edges, new
        self._settings, self._problem = settings, None
        if old is not None:
            self._retire(old)
        if new is not None:
            mode = "upstream mode" if upstream else "the distribution's origins"
            logger.info(
                "edgesim: serving %s (%s) with %s",
                file,
                new.distribution.settings.id,
                mode,
            )

    def _watch(self) -> None:
        if self._watcher is not None or self._closing is not None or not _loop_running():
            return  # configured before the event loop runs: running() starts it
        self._watcher = spawn(self._follow(), name="edgesim-mitm-watch")

    async def _follow(self) -> None:
        """Reload when the distribution file, or the code of one of its functions, changes."""
        while True:
            self._rewatch.clear()
            roots = self._roots()
            async with contextlib.aclosing(
                watch(roots or (), self._rewatch, ready=self.watching)
            ) as batches:
                async for changed in batches:
                    settings = self._wanted
                    if settings is not None and _touches(changed, settings[0], roots):
                        await self._reload(settings)
                    if self._roots() != roots:
                        break  # another file, or functions came or went: watch the new set
            self.watching.clear()

    def _roots(self) -> DistributionRoots | None:
        """What to watch: the distribution file's folder and its functions' code (None without
        a file)."""
        settings = self._wanted
        if settings is None or not settings[0]:
            return None
        serving = [self._edges.distribution] if self._edges is not None else []
        return distribution_roots([Path(settings[0]).expanduser()], serving)

    async def _reload(self, settings: tuple[str, bool, int]) -> None:
        file = settings[0]
        try:
            distribution = self._read(settings)
            if distribution is not None:
                problems = await check_distribution_code([file], [distribution])
                if problems:
                    raise problems[0]
            if settings != self._wanted:
                return  # the options changed meanwhile: configure() loaded what they name
            self._swap(settings, distribution)
        except EdgesimError as error:
            kept = "the previous version keeps serving" if self._edges else "flows get a 502"
            self._problem = str(error)
            logger.error("edgesim: %s not reloaded (%s): %s", file, kept, error)
        else:
            logger.info("edgesim: reloaded %s", file)

    def _retire(self, edges: EdgeSet) -> None:
        edges.retired = True
        if edges.in_flight == 0:
            self._close_later(edges)
        else:
            self._retired.append(edges)  # the last of its flows closes it

    def _close_later(self, edges: EdgeSet) -> None:
        if edges in self._retired:
            self._retired.remove(edges)
        _ = spawn(edges.aclose(), name="edgesim-mitm-retire")

    async def _aclose(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        every = [e for e in (self._edges, *self._retired) if e is not None]
        self._edges, self._retired, self._settings, self._wanted = None, [], None, None
        for edges in every:
            await edges.aclose()
        if self._origins is not None:
            await self._origins.aclose()
            self._origins = None

    # --- function logs --------------------------------------------------------------------

    def _function_log(self, function: str, lines: list[str]) -> None:
        collected = _flow_logs.get()
        if collected is not None:
            collected.extend(f"[{function}] {line}" for line in lines)
        if self._level("functions"):
            for line in lines:
                # Node.js keeps a multi-line message in one entry, joined by \r.
                logger.info("[%s] %s", function, line.replace("\r", "\n    "))


def _touches(changed: set[Path], file: str, roots: DistributionRoots | None) -> bool:
    """Whether a batch of changes holds the distribution ``file`` or a file of a function's
    code (the file's folder holds other files too)."""
    if roots is None:
        return False
    (_, _), (code, _) = roots
    target = Path(file).expanduser().resolve()
    return any(
        path.resolve() == target or any(path.is_relative_to(root) for root in code)
        for path in changed
    )


class _SettingError(EdgesimError):
    """An edgesim option holds a value it cannot take."""


# mitmproxy loads the addons a script names here (``mitmdump -s``).
addons: list[object] = [EdgesimAddon()]
