"""swr benchmarks: recovery time, switcher overhead, whole-AZ outage, cost (see bench/RESULTS.md)."""
