"""`nox -s bench`: bounded benchmarks of the reference server, each figure beside its baseline.

Modules: `stats` (percentiles, summaries), `goals` (the issue's targets and pass/miss), `report`
(bench.json and bench.md), `load` (the load generator, run as its own process), `bare` (the
baseline Starlette app), `servers` (starting and stopping servers, reading their memory),
`pyspy` (where the server's time goes) and `scenarios/` (one module per scenario).
"""
