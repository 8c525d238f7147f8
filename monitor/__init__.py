"""A passive conformance monitor: a reverse proxy that checks the traffic it forwards against the
requirement catalog (`python -m monitor --upstream URL --listen 127.0.0.1:9000`).

Modules: `exchange` (one recorded request/response), `sse` (the push-style event-stream reader the
proxy feeds), `routes` (which API and operation a path is), `tenants` (who is calling), `state`
(what was observed per job, LRU-bounded), `checks` (the rules, each naming a catalog requirement),
`ledger` (per requirement: observations and violations), `report` (junit.xml, conformance.json,
conformance.html), `proxy` (the ASGI app: forwarding and the /_monitor/ pages).
"""
