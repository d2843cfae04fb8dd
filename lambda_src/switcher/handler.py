"""Lambda entry point: EventBridge events (switch) and `Custom::SwrNode` requests (provisioning).

Thin on purpose: validate the environment, build clients lazily, delegate, and for custom resources
always answer CloudFormation (SUCCESS or FAILED with a reason) so a stack never hangs.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from switcher import contract, provision
from switcher.clients import Clients, make_clients, retry_config
from switcher.observability import logger, metrics, quiet_when_no_metrics
from switcher.reconcile import reconcile
from switcher.settings import Settings
from switcher.switch import run_event

_clients: Clients | None = None
#: CloudFormation limits the response body; keep the reason well within it.
_MAX_REASON = 1000


def _get_clients(settings: Settings) -> Clients:
    """Clients are built at the first invocation (never at import) and reused by warm invocations."""
    global _clients
    if _clients is None:
        _clients = make_clients(config=retry_config(settings.retry_mode, settings.retry_max_attempts))
    return _clients


def reset_clients(clients: Clients | None = None) -> None:
    """Replace the clients warm invocations reuse; None: the next invocation builds them, as a cold start
    does. For runners that call the handler in their own process (the local drill, tests), whose endpoint
    changes between invocations; Lambda itself never calls it."""
    global _clients
    _clients = clients


@logger.inject_lambda_context(clear_state=True)
@quiet_when_no_metrics
@metrics.log_metrics
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Dispatch: a CloudFormation request if the event has `RequestType`, the reconciler if its source
    is `swr.reconciler`, else an EventBridge event (a possible switch; anything malformed is a skip)."""
    if isinstance(event, Mapping) and "RequestType" in event:
        return handle_custom_resource(event, context)
    settings = Settings.from_env()
    request_id = getattr(context, "aws_request_id", None)
    if isinstance(event, Mapping) and event.get("source") == contract.RECONCILE_EVENT_SOURCE:
        report = reconcile(
            clients=_get_clients(settings),
            settings=settings,
            now=time.time,
            remaining_ms=context.get_remaining_time_in_millis,
            request_id=request_id,
        )
        return asdict(report)
    result = run_event(
        event,
        clients=_get_clients(settings),
        settings=settings,
        remaining_ms=context.get_remaining_time_in_millis,
        request_id=request_id,
    )
    return asdict(result)


def handle_custom_resource(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Provision/update/delete a node and send CloudFormation the response, whatever happens.

    Without a usable ResponseURL nobody can hear the answer: such a request is skipped before any AWS call
    (a Delete must not terminate anything it cannot report on). The rest of the request is validated by
    `provision.handle`, again before any AWS call.
    """
    try:
        url = response_url(event.get("ResponseURL"))
    except ValueError as err:
        logger.error(
            "custom resource request skipped: no usable ResponseURL",
            extra={"request_type": event.get("RequestType"), "error": str(err)},
        )
        return {"Status": "SKIPPED", "Reason": str(err)[:_MAX_REASON]}
    fallback_id = event.get("PhysicalResourceId") or f"swr-node-failed-{event.get('RequestId', 'unknown')}"
    response: dict[str, Any] = {
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "PhysicalResourceId": fallback_id,
        "Status": "SUCCESS",
        "Data": {},
    }
    try:
        settings = Settings.from_env()
        physical, data = provision.handle(
            event, clients=_get_clients(settings), settings=settings, now=time.time
        )
        response.update(PhysicalResourceId=physical, Data=data)
    except Exception as err:  # noqa: BLE001 - whatever failed, CloudFormation must get an answer
        logger.exception("custom resource request failed", extra={"request_type": event.get("RequestType")})
        response.update(Status="FAILED", Reason=f"{type(err).__name__}: {err}"[:_MAX_REASON])
    send_response(url, response)
    return response


def response_url(raw: Any) -> str:
    """The request's ResponseURL if CloudFormation could have sent it (https; plain http only to a local test
    server), else ValueError."""
    if not isinstance(raw, str):
        raise ValueError(f"ResponseURL {raw!r}: expected an https URL")
    try:
        parsed = urllib.parse.urlparse(raw)
        local = parsed.hostname in ("127.0.0.1", "localhost")
    except ValueError as err:
        raise ValueError(f"ResponseURL {raw!r}: {err}") from None
    if not parsed.netloc or (parsed.scheme != "https" and not (parsed.scheme == "http" and local)):
        raise ValueError(f"ResponseURL {raw!r}: expected an https URL")
    return raw


def send_response(url: str, body: dict[str, Any]) -> None:
    """PUT the response to CloudFormation's pre-signed URL (checked by `response_url`)."""
    url = response_url(url)
    data = json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=data, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(data))}
    )
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - scheme checked above
        logger.info("custom resource response sent", extra={"status": body["Status"], "http": resp.status})
