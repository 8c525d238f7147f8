"""Small typed clients used by every suite: recording, spec checks, 429 handling, SSE reading."""
