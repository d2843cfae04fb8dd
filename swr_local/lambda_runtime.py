"""Run the switcher's handler in this process, as Lambda would run the deployed function.

moto cannot run a Lambda function (it would need Docker), so the local drill calls the handler named in
the deployed function's configuration, with that function's environment, and serves the CloudFormation
response URL a custom resource answers to.
"""

from __future__ import annotations

import importlib
import json
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from swr_cli.aws import AwsTarget
from swr_local.emulator import LOCAL_ACCOUNT_ID, REGION, environment
from swr_local.errors import LocalRunError

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read (the one fake context
    of the local drill, the tests and the benchmarks)."""

    function_name: str = "swr-prod-switcher"
    function_arn: str = f"arn:aws:lambda:{REGION}:{LOCAL_ACCOUNT_ID}:function:swr-prod-switcher"
    memory_limit_in_mb: int = 256
    timeout_seconds: int = 900
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return self.function_arn

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


@dataclass(frozen=True)
class DeployedFunction:
    """What the in-process run needs from a deployed function's configuration."""

    name: str
    arn: str
    handler: str
    environment: dict[str, str]
    timeout: int

    @classmethod
    def describe(cls, target: AwsTarget, name_or_arn: str) -> DeployedFunction:
        conf = target.client("lambda").get_function_configuration(FunctionName=name_or_arn)
        return cls(
            name=conf["FunctionName"],
            arn=conf["FunctionArn"],
            handler=conf["Handler"],
            environment=dict(conf.get("Environment", {}).get("Variables", {})),
            timeout=int(conf.get("Timeout", 900)),
        )


def load_handler(spec: str) -> Handler:
    """The callable a Lambda `Handler` string names ("pkg.module.function").

    The switcher's asset root may be `lambda_src` (handler `switcher.handler.x`) or the package directory
    itself (handler `handler.x`); both resolve to the installed `switcher` package, the same code.
    """
    module_name, _, attr = spec.rpartition(".")
    if not module_name:
        raise ValueError(f"Lambda handler {spec!r} is not of the form module.function")
    candidates = (
        [module_name] if module_name.startswith("switcher") else [module_name, f"switcher.{module_name}"]
    )
    for candidate in candidates:
        try:
            module = importlib.import_module(candidate)
        except ModuleNotFoundError:
            continue
        handler = getattr(module, attr, None)
        if callable(handler):
            return handler
    raise ValueError(f"Lambda handler {spec!r}: no callable {attr} in {' or '.join(candidates)}")


def _cold_start(handler: Handler) -> None:
    """Each in-process invocation is a cold start: the clients a previous invocation left in the handler's
    module may point at another, already stopped, emulator (`reset_clients`, the handler's public way)."""
    module = sys.modules.get(getattr(handler, "__module__", ""))
    reset = getattr(module, "reset_clients", None)
    if callable(reset):
        reset()


def lambda_environment(function: DeployedFunction, target: AwsTarget) -> AbstractContextManager[None]:
    """The process environment a Lambda runtime gives the function, for the duration of the block."""
    env: dict[str, str | None] = dict(function.environment)
    env.update(
        AWS_REGION=target.region,
        AWS_DEFAULT_REGION=target.region,
        AWS_LAMBDA_FUNCTION_NAME=function.name,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
    )
    if target.endpoint_url:
        env["AWS_ENDPOINT_URL"] = target.endpoint_url
    return environment(env)


def invoke(function: DeployedFunction, target: AwsTarget, event: dict[str, Any]) -> Any:
    """Call the deployed function's handler in-process with its environment; return its result."""
    with lambda_environment(function, target):
        handler = load_handler(function.handler)
        _cold_start(handler)
        context = LambdaContext(function.name, function.arn, timeout_seconds=function.timeout)
        return handler(json.loads(json.dumps(event)), context)


@dataclass
class ResponseInbox:
    """Responses PUT by custom-resource handlers to the pre-signed ResponseURL CloudFormation gives them."""

    base_url: str
    #: request path (the request id) -> the response PUT there
    received: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: every response, in the order they arrived
    responses: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url_for(self, request_id: str) -> str:
        return f"{self.base_url}/{request_id}"


@contextmanager
def response_inbox() -> Iterator[ResponseInbox]:
    """A tiny HTTP server on 127.0.0.1 standing in for CloudFormation's response bucket (the one stand-in
    of the local drill and the tests)."""
    inbox_ref: list[ResponseInbox] = []

    class _Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            inbox = inbox_ref[0]
            with inbox._lock:
                response = json.loads(body or b"{}")
                inbox.received[self.path.strip("/")] = response
                inbox.responses.append(response)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    inbox_ref.append(ResponseInbox(base_url=f"http://127.0.0.1:{server.server_address[1]}"))
    thread = threading.Thread(target=server.serve_forever, name="cfn-response-inbox", daemon=True)
    thread.start()
    try:
        yield inbox_ref[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class CustomResourceFailed(LocalRunError):
    """The handler answered FAILED (or never answered) to a custom-resource request."""


def run_custom_resource_create(
    function: DeployedFunction,
    target: AwsTarget,
    inbox: ResponseInbox,
    *,
    stack_id: str,
    logical_id: str,
    resource_type: str,
    properties: dict[str, Any],
) -> dict[str, Any]:
    """Send the Create request CloudFormation would send; return the handler's SUCCESS response."""
    request_id = str(uuid.uuid4())
    event = {
        "RequestType": "Create",
        "ServiceToken": function.arn,
        "ResponseURL": inbox.url_for(request_id),
        "StackId": stack_id,
        "RequestId": request_id,
        "LogicalResourceId": logical_id,
        "ResourceType": resource_type,
        "ResourceProperties": {**properties, "ServiceToken": function.arn},
    }
    result = invoke(function, target, event)
    response = inbox.received.get(request_id)
    if response is None and isinstance(result, dict) and "Status" in result:
        response = result  # a handler that returns its response instead of PUTting it
    if response is None:
        raise CustomResourceFailed(f"{logical_id}: the handler sent no response to the ResponseURL")
    if response.get("Status") != "SUCCESS":
        raise CustomResourceFailed(f"{logical_id}: {response.get('Status')}: {response.get('Reason', '')}")
    return response
