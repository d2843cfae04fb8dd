"""swr benchmarks: recovery time, switcher overhead, whole-AZ outage, cost (see bench/RESULTS.md)."""

import os

# The switcher logs JSON and buffers EMF metrics to stdout; in a benchmark that is noise. Set here,
# before any benchmark module imports the switcher (Powertools reads these at import).
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "swr-bench")
