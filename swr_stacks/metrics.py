"""The switcher's Powertools metrics as CloudWatch sees them: one definition for the dashboard and alarms.

CloudWatch identifies a metric by namespace, name and its exact set of dimensions; a query or an alarm
with another dimension set reads a different (usually empty) metric ("Dimensions", Amazon CloudWatch
concepts, CloudWatch User Guide). So every metric here carries exactly `contract.METRIC_DIMENSIONS`,
the set the switcher emits.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from switcher import contract


def switcher_dimensions(vpc_name: str) -> dict[str, str]:
    """The dimension map of a VPC's switcher metrics, keyed by exactly `contract.METRIC_DIMENSIONS`."""
    values = {"service": contract.METRICS_SERVICE, contract.METRICS_VPC_DIMENSION: vpc_name}
    # A key added to the contract without a value here fails the synth instead of graphing nothing.
    return {key: values[key] for key in contract.METRIC_DIMENSIONS}


def switcher_metric(
    name: str, *, vpc_name: str, statistic: str, period: Duration, label: str | None = None
) -> cloudwatch.Metric:
    """One of the switcher's metrics (namespace `contract.METRICS_NAMESPACE`) for a VPC."""
    return cloudwatch.Metric(
        namespace=contract.METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map=switcher_dimensions(vpc_name),
        statistic=statistic,
        period=period,
        label=label,
    )
