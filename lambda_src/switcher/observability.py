"""Powertools Logger and Metrics of the switcher (JSON logs, EMF metrics), created once per process."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics

from switcher import contract

logger = Logger(service=contract.METRICS_SERVICE)
metrics = Metrics(namespace=contract.METRICS_NAMESPACE, service=contract.METRICS_SERVICE)

#: The UserWarning Powertools' `log_metrics` raises when an invocation flushes no metric. Every EC2 stop in
#: the region invokes every VPC's switcher; all but one of them skip and publish nothing, which is normal.
#: Powertools' metrics docs ("Suppressing warning messages on empty metrics") filter exactly this message.
EMPTY_METRICS_WARNING = "No application metrics to publish"

_Handler = TypeVar("_Handler", bound=Callable[..., Any])


def quiet_when_no_metrics(handler: _Handler) -> _Handler:
    """Wrap `metrics.log_metrics(handler)`: no warning for an invocation without metrics (a skip).

    Only that one warning is filtered, only during the invocation; metrics that were added are flushed
    as before (and `raise_on_empty_metrics` stays off: a skip legitimately has none).
    """

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=EMPTY_METRICS_WARNING, category=UserWarning)
            return handler(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
