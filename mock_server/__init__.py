"""Stateful reference server for the AUVY, AVA and Strait job APIs.

`mock_server.model` is the pure state (no HTTP); `mock_server.apis` is a thin HTTP layer per API;
`mock_server.app.create_app` wires them to the OpenAPI documents in `openapi/`.
"""
