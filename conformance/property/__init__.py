"""Property-based and robustness suites, for every API and any target.

- `test_schemathesis.py`: positive and negative data for every operation of every spec, and the
  link-driven stateful phase.
- `machines.py` + `test_lifecycle.py`: a model of each API's job lifecycle, kept independently of
  the server, checked against the target after every step.
- `test_stream_resume.py`: random disconnect points; reading on with `after` gives the suffix.
- `battery.py` + `test_bad_input.py`: malformed requests generated from the specs.
- `test_races.py`: concurrent requests that must end in one consistent state.

How hard they push is `depth.py` (`--depth`, `--seed`); how a failure reads is `repro.py`.

Each property demands only what the documents (or FACTS.md) promise and accepts every answer they
allow, so any correct deployment passes it. Where the reference server makes a choice they leave
open, that choice is checked by a separate test marked with a `decision` requirement
(`*.properties.lifecycle-reference`, `*.properties.bad-input-rejected`,
`*.properties.schema-rejects-invalid`): binding on the reference, informational elsewhere.
"""
