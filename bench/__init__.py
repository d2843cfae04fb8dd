"""swr benchmarks: recovery time, switcher overhead, whole-AZ outage, cost (see bench/RESULTS.md).

Importing this package changes nothing in the process (the test suite imports parts of it): the
switcher is quietened by `bench.harness.deployment`, which every benchmark runs in.
"""
