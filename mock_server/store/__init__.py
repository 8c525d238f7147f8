"""Keeping the world outside the process: a Redis-backed store so several workers share one world.

`streams.RedisStreams` keeps event streams as real Redis Streams; `shared.SharedWorld` keeps the
rest of the world as a versioned snapshot and runs every request and timer under a Redis lock;
`workers` serves the app from several uvicorn worker processes. Only imported with `--store
redis://...`, so the in-memory default needs neither redis-py nor a server.
"""
