"""The README's claim about the suite's proof counts what the tests actually run: every variant
preset (tests/conformance/test_variants.py) and every fault (tests/conformance/test_faults.py).
A preset or fault added without updating the README fails here, so the sentence never lies."""

from __future__ import annotations

import re
from pathlib import Path

from mock_server.faults import FAULTS
from mock_server.variants import PRESETS

README = Path(__file__).resolve().parents[1] / "README.md"
TALLY = re.compile(
    r"the whole suite passes against (\d+) variants? and fails against each of (\d+) faults?",
    re.IGNORECASE,
)


def test_the_readme_tally_counts_every_variant_and_every_fault() -> None:
    found = [
        m for line in README.read_text(encoding="utf-8").splitlines() if (m := TALLY.search(line))
    ]
    assert len(found) == 1, (
        f"README.md must state the tally exactly once (found {len(found)}): "
        f'"the whole suite passes against {len(PRESETS)} variants and fails against each of '
        f'{len(FAULTS)} faults"'
    )
    variants, faults = (int(n) for n in found[0].groups())
    assert (variants, faults) == (len(PRESETS), len(FAULTS)), (
        f"README.md says {variants} variants and {faults} faults; the tests run "
        f"{len(PRESETS)} ({', '.join(sorted(PRESETS))}) and {len(FAULTS)}"
    )
