"""`python -m mock_server`: the command line is mock_server.cli."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
