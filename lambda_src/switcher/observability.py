"""Powertools Logger and Metrics of the switcher (JSON logs, EMF metrics), created once per process."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

from switcher import contract

logger = Logger(service=contract.METRICS_SERVICE)
metrics = Metrics(namespace=contract.METRICS_NAMESPACE, service=contract.METRICS_SERVICE)
