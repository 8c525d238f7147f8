"""Conformance suites for the AUVY, AVA and Strait job APIs, runnable against any deployment.

`pytest conformance --target URL --profile FILE`; with no target the bundled reference server is
started on a free loopback port. Every test names the catalog requirements it checks.
"""
