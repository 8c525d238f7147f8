"""One module per scenario of issue 7; each `run` returns JSON-ready figures."""
