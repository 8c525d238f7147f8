"""Pure state of the emulated systems: no HTTP, no asyncio, no wall clock.

Time comes in as `now_ms` from an injected clock; timers live in `Scheduler`; the HTTP layer calls
operations and renders their results or `ModelError`s.
"""
