"""What every test run of the project's own tests sets up."""

from __future__ import annotations

import os

from mock_server.store.snapshot import VERIFY_ENV

# Every Redis-backed server these tests start (in process, or as a child process inheriting
# the environment) checks each print its documents' shapes saved (see Snapshots.state_print):
# a change the shapes hid fails the test that made it instead of being lost between workers.
os.environ.setdefault(VERIFY_ENV, "1")
