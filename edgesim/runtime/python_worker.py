"""The Python worker: one Lambda Python function hosted in its own process.

The pool runs it as ``python -I -S -B python_worker.py --in-fd N --out-fd M --parent-pid P``:
isolated mode and no ``site``, so the function sees the standard library and its own folder,
never edgesim's virtualenv. It speaks the protocol described in ``protocol.py``, through
``python_protocol.py`` beside it, loaded by path.

This file is deliberately standalone: it imports nothing from edgesim (which is not importable
here, by design) and sticks to Python 3.9 syntax so it runs under every Python runtime
Lambda@Edge offers.

What it emulates of Lambda's Python runtime: the handler lookup and its error types, the context
object, the root logger's handler and line format, the error log with traceback, and the JSON
marshalling of the result.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

_WORKER_FILE = os.path.abspath(__file__)
_IMPORTLIB_DIR = os.path.dirname(os.path.abspath(importlib.__file__ or ""))


def load_sibling(file_name: str, module_name: str) -> ModuleType:
    """Run a module from this program's folder by path, as the worker's private module.

    It stays off ``sys.path`` and out of ``sys.modules``: the function gains none of edgesim's
    modules, and a module of the function's by the same name neither shadows it nor is shadowed.
    Its compiled code comes the way the worker's own did: started by ``python_boot.py``, the
    worker's loader keeps code in edgesim's bytecode cache, and a loader of its class does the
    same for the sibling (compiling it at every cold start would cost about 2 ms).
    """
    here = os.path.join(os.path.dirname(_WORKER_FILE), file_name)
    # This module's own loader: python_boot.py's caching one, or Python's for a plain run.
    own = globals().get("__loader__")
    source_loader = importlib.machinery.SourceFileLoader
    loader_class = type(own) if isinstance(own, source_loader) else source_loader
    loader = loader_class(module_name, here)
    spec = importlib.util.spec_from_file_location(module_name, here, loader=loader)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    loader.exec_module(module)
    return module


if TYPE_CHECKING:
    # For the type checker only: where the worker runs, edgesim is not importable.
    from edgesim.runtime import python_protocol as protocol
else:
    protocol = load_sibling("python_protocol.py", "_edgesim_protocol")

# The request id the logging filter stamps on records; one invocation at a time, so one value.
_current_request_id = ""

Handler = Callable[[Any, Any], Any]


class LambdaContext:
    """The ``context`` argument of a Python handler, with Lambda's attribute names.

    ``memory_limit_in_mb`` is a string, as Lambda's Python runtime reads it from the
    environment (AWS's own samples concatenate it with other strings).
    """

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation times out."""
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def __repr__(self) -> str:
        return (
            f"LambdaContext(aws_request_id={self.aws_request_id!r}, "
            f"function_name={self.function_name!r}, function_version={self.function_version!r})"
        )


class InitFailure(Exception):
    """The handler could not be loaded; carries Lambda's error type."""

    def __init__(self, error_type: str, message: str, stack: list[str]) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack = stack


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _current_request_id
        return True


def configure_logging() -> None:
    """Give the root logger Lambda's handler and format; the level stays Python's default."""
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    handler.addFilter(_RequestIdFilter())
    logging.getLogger().addHandler(handler)


def configure_streams() -> None:
    """Make prints reach the log pipe line by line, in the order they were written."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True, errors="backslashreplace")


def user_frames(tb: TracebackType | None) -> list[str]:
    """Format a traceback without this file's and importlib's frames, as Lambda shows it."""
    frames = [
        frame
        for frame in traceback.extract_tb(tb)
        if frame.filename != _WORKER_FILE
        and not frame.filename.startswith("<frozen importlib")
        and os.path.dirname(frame.filename) != _IMPORTLIB_DIR
    ]
    return traceback.format_list(frames)


def log_error(error_type: str, message: str, stack: list[str]) -> None:
    """Print the ``[ERROR]`` record Lambda's runtime writes for an unhandled error."""
    lines = [f"[ERROR] {error_type}: {message}"]
    if stack:
        lines.append("Traceback (most recent call last):")
        lines.extend(entry.rstrip("\n") for entry in stack)
    try:
        sys.stderr.write("\n".join(lines) + "\n")
    except (OSError, ValueError):
        pass


def load_handler(handler_name: str) -> Handler:
    """Import ``module.function`` (``pkg/mod.function`` allowed) the way Lambda does."""
    module_name, dot, function_name = handler_name.rpartition(".")
    if not dot or not module_name or not function_name:
        raise InitFailure(
            "Runtime.MalformedHandlerName",
            f"Bad handler '{handler_name}': not enough values to unpack (expected 2, got 1)",
            [],
        )
    module_path = module_name.replace("/", ".")
    if module_path.split(".")[0] in sys.builtin_module_names:
        raise InitFailure(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {module_path} as a handler module",
            [],
        )
    try:
        module = importlib.import_module(module_path)
    except ImportError as exc:
        raise InitFailure(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}", []
        ) from exc
    except SyntaxError as exc:
        raise InitFailure(
            "Runtime.UserCodeSyntaxError",
            f"Syntax error in module '{module_name}': {exc}",
            [f'  File "{exc.filename}" Line {exc.lineno}\n    {(exc.text or "").strip()}\n'],
        ) from exc
    except Exception as exc:
        raise InitFailure(type(exc).__name__, str(exc), user_frames(exc.__traceback__)) from exc
    handler = getattr(module, function_name, None)
    if handler is None:
        raise InitFailure(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
            [],
        )
    return handler  # type: ignore[no-any-return]


def invoke(channel: protocol.Channel, handler: Handler, request: dict[str, Any]) -> None:
    """Run one invocation and send its reply after its log mark."""
    global _current_request_id
    request_id = str(request["requestId"])
    # The pool accepts only a reply echoing this id; the function is not handed it.
    invocation_id = request.pop("invocationId", None)
    _current_request_id = request_id
    context = LambdaContext(
        request_id, int(request["deadlineMs"]), str(request.get("invokedFunctionArn", ""))
    )
    body: bytes | None = None
    failure: tuple[str, str, list[str]] | None = None
    try:
        value = handler(request.get("event"), context)
    except Exception as exc:
        failure = (type(exc).__name__, str(exc), user_frames(exc.__traceback__))
    else:
        try:
            encoded = encode_value(value)
        except (TypeError, ValueError, RecursionError) as exc:
            failure = ("Runtime.MarshalError", f"Unable to marshal response: {exc}", [])
        else:
            if len(encoded) > protocol.MAX_PAYLOAD_BYTES:
                message = (
                    f"Response payload size ({len(encoded)} bytes) exceeded maximum allowed "
                    f"payload size ({protocol.MAX_PAYLOAD_BYTES} bytes)."
                )
                failure = ("Function.ResponseSizeTooLarge", message, [])
            else:
                body = encoded
    if failure is not None:
        log_error(*failure)
    protocol.write_log_mark(request_id)
    if failure is not None:
        error_type, message, stack = failure
        channel.send(
            {
                "type": "error",
                "requestId": request_id,
                "invocationId": invocation_id,
                "errorType": error_type,
                "errorMessage": message,
                "stackTrace": stack,
                "maxRssBytes": protocol.max_rss_bytes(),
            }
        )
        return
    assert body is not None
    envelope = {"type": "result", "requestId": request_id, "invocationId": invocation_id}
    envelope["maxRssBytes"] = protocol.max_rss_bytes()
    head = json.dumps(envelope, separators=(",", ":")).encode("utf-8")
    # Splice the value in rather than encoding it a second time.
    channel.send_body(head[:-1] + b',"value":' + body + b"}")


def encode_value(value: Any) -> bytes:
    """The value's JSON with text as UTF-8, as compact as Node.js sends it (text with lone
    surrogates cannot be UTF-8: it goes out escaped, as ``json`` does by default)."""
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, allow_nan=False).encode("utf-8")


def parse_args(argv: list[str]) -> dict[str, str]:
    """``--name value`` pairs."""
    options: dict[str, str] = {}
    for index in range(0, len(argv) - 1, 2):
        name, value = argv[index], argv[index + 1]
        if not name.startswith("--"):
            raise SystemExit(f"edgesim worker: unexpected argument {name!r}")
        options[name[2:]] = value
    return options


def ignored_breakpoint(frame: Any) -> None:
    """``breakpoint()`` with no debugger attached: a log line (pdb would get BdbQuit)."""
    where = f"{frame.f_code.co_filename}:{frame.f_lineno}"
    sys.stderr.write(f"breakpoint() at {where} ignored: no debugger is attached\n")


def start_debugger(options: dict[str, str]) -> None:
    """Listen for a debugger as the pool asked (``--debug-port``), with python_debug.py."""
    debug = load_sibling("python_debug.py", "_edgesim_debug")
    debug.listen(int(options["debug-port"]), options["debugpy"], ignored_breakpoint)


def main(argv: list[str]) -> int:
    """Load the handler, report readiness, then serve invocations until the pool goes away."""
    options = parse_args(argv)
    protocol.die_with_parent(int(options.get("parent-pid", "0")))
    channel = protocol.Channel(int(options["in-fd"]), int(options["out-fd"]))
    os.set_inheritable(channel.in_fd, False)
    os.set_inheritable(channel.out_fd, False)
    configure_streams()
    configure_logging()
    # The pool never sets LC_CTYPE: it is Python's locale coercion, which kicks in when the host
    # lacks the en_US.UTF-8 locale that Lambda's image has. Hide it from the function.
    os.environ.pop("LC_CTYPE", None)
    sys.breakpointhook = lambda *args, **kwargs: ignored_breakpoint(sys._getframe(1))
    if "debug-port" in options:
        start_debugger(options)
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    sys.path.insert(0, task_root)
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except InitFailure as failure:
        log_error(failure.error_type, failure.message, failure.stack)
        protocol.write_log_mark(protocol.INIT_MARK_ID)
        channel.send(
            {
                "type": "init_error",
                "errorType": failure.error_type,
                "errorMessage": failure.message,
                "stackTrace": failure.stack,
                "maxRssBytes": protocol.max_rss_bytes(),
            }
        )
        return 1
    protocol.write_log_mark(protocol.INIT_MARK_ID)
    channel.send({"type": "ready", "maxRssBytes": protocol.max_rss_bytes()})
    while True:
        try:
            request = channel.receive()
        except BrokenPipeError:
            return 0
        if request is None:
            return 0
        if request.get("type") != "invoke":
            raise SystemExit(f"edgesim worker: unexpected message type {request.get('type')!r}")
        try:
            invoke(channel, handler, request)
        except BrokenPipeError:
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
