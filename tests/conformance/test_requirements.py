from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conformance.requirements import (
    Catalog,
    CatalogError,
    ConformanceClass,
    Requirement,
    load_catalog,
    normalise_text,
    quote_in_source,
)

# The catalog's copy of the source documents (always there, so the quote checks never skip),
# and ../shared where this checkout has it: the copy must be the documents as they are.
SEEDS_DIR = (
    Path(__file__).resolve().parents[2] / "conformance" / "requirements" / "sources" / "seeds"
)
SHARED_DIR = Path(__file__).resolve().parents[3] / "shared"

AUVY_CLASS = """
[[class]]
id = "auvy-jobs-control"
api = "auvy"
title = "AUVY jobs: cancel, resume and input"
description = "Cancel, resume and input of a job."
"""

AUVY_REQUIREMENTS = """
[[requirement]]
id = "auvy.jobs.cancel.terminal-400"
level = "MUST"
class = "auvy-jobs-control"
source = "auvy-jobs-api.txt"
authority = "document"
quote = "Returns 400 if job is already completed or failed."
note = "A cancelled job counts as terminal too."

[[requirement]]
id = "auvy.jobs.input.shape-400"
level = "SHOULD"
class = "auvy-jobs-control"
source = "auvy-jobs-api.txt"
authority = "document"
quote = "Other shapes are rejected with 400."
"""

STRAIT = """
[[class]]
id = "strait-runs-core"
api = "strait"
title = "Strait runs"

[[requirement]]
id = "strait.runs.list"
level = "MAY"
class = "strait-runs-core"
source = "strait-runs-api.txt"
authority = "document"
quote = "List runs."
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def requirement(
    req_id: str = "auvy.jobs.cancel.terminal-400",
    *,
    level: str = "MUST",
    cls: str = "auvy-jobs-control",
    source: str = "auvy-jobs-api.txt",
    quote: str = "Returns 400 if job is already completed or failed.",
    authority: str = "document",
    extra: str = "",
) -> str:
    return (
        f'\n[[requirement]]\nid = "{req_id}"\nlevel = "{level}"\nclass = "{cls}"\n'
        f'source = "{source}"\nauthority = "{authority}"\nquote = "{quote}"\n{extra}'
    )


def load_error(directory: Path) -> CatalogError:
    with pytest.raises(CatalogError) as info:
        load_catalog(directory)
    return info.value


# --- loading -------------------------------------------------------------------------------------


def test_loads_classes_and_requirements_in_file_order(tmp_path: Path) -> None:
    write(tmp_path, "auvy.toml", AUVY_CLASS + AUVY_REQUIREMENTS)

    catalog = load_catalog(tmp_path)

    assert catalog.classes == {
        "auvy-jobs-control": ConformanceClass(
            id="auvy-jobs-control",
            api="auvy",
            title="AUVY jobs: cancel, resume and input",
            description="Cancel, resume and input of a job.",
        )
    }
    assert list(catalog.requirements) == [
        "auvy.jobs.cancel.terminal-400",
        "auvy.jobs.input.shape-400",
    ]
    cancel = catalog.requirements["auvy.jobs.cancel.terminal-400"]
    assert cancel == Requirement(
        id="auvy.jobs.cancel.terminal-400",
        level="MUST",
        conformance_class="auvy-jobs-control",
        source="auvy-jobs-api.txt",
        quote="Returns 400 if job is already completed or failed.",
        note="A cancelled job counts as terminal too.",
    )
    assert cancel.api == "auvy"
    assert catalog.requirements["auvy.jobs.input.shape-400"].note == ""


def test_merges_files_sorted_by_name_and_resolves_classes_across_files(tmp_path: Path) -> None:
    # The requirement file sorts before the file defining its class: classes must load first.
    write(tmp_path, "a-auvy-requirements.toml", AUVY_REQUIREMENTS)
    write(tmp_path, "b-auvy-classes.toml", AUVY_CLASS)
    write(tmp_path, "0-strait.toml", STRAIT)
    (tmp_path / "notes.txt").write_text("not a catalog file", encoding="utf-8")

    catalog = load_catalog(tmp_path)

    assert list(catalog.classes) == ["strait-runs-core", "auvy-jobs-control"]
    assert list(catalog.requirements) == [
        "strait.runs.list",
        "auvy.jobs.cancel.terminal-400",
        "auvy.jobs.input.shape-400",
    ]


def test_empty_directory_gives_an_empty_catalog(tmp_path: Path) -> None:
    assert load_catalog(tmp_path) == Catalog()


def test_multiline_quote_is_kept(tmp_path: Path) -> None:
    write(
        tmp_path,
        "auvy.toml",
        AUVY_CLASS
        + '\n[[requirement]]\nid = "auvy.x"\nlevel = "MAY"\nclass = "auvy-jobs-control"\n'
        'source = "s.txt"\nauthority = "document"\n'
        'quote = """\nReturns 400 if job\n  is already completed."""\n',
    )
    assert (
        load_catalog(tmp_path).get("auvy.x").quote == "Returns 400 if job\n  is already completed."
    )


def test_packaged_catalog_loads() -> None:
    # Whatever the catalog authors have committed so far must be loadable.
    assert isinstance(load_catalog(), Catalog)


def _packaged_requirements() -> list[Requirement]:
    try:
        return list(load_catalog().requirements.values())
    except CatalogError:
        return []  # reported by test_packaged_catalog_loads


@pytest.mark.parametrize("req", _packaged_requirements(), ids=lambda r: r.id)
def test_packaged_quotes_appear_in_their_source(req: Requirement) -> None:
    assert quote_in_source(req, SEEDS_DIR), f"{req.id}: quote not found in {req.source}"


def _shared_documents() -> list[Path]:
    if not SHARED_DIR.is_dir():
        return []
    return [SHARED_DIR / "FACTS.md", *sorted((SHARED_DIR / "seeds").glob("*.txt"))]


@pytest.mark.parametrize("original", _shared_documents(), ids=lambda p: p.name)
def test_the_catalogs_copy_of_a_source_document_is_unchanged(original: Path) -> None:
    copy = SEEDS_DIR.parent / (
        "FACTS.md" if original.name == "FACTS.md" else f"seeds/{original.name}"
    )
    assert copy.read_bytes() == original.read_bytes(), f"{copy} differs from {original}"


def test_a_quote_must_be_a_sentence_not_a_fragment() -> None:
    """A quote states the requirement: at least a few words, not a field name."""
    short = [r.id for r in _packaged_requirements() if len(normalise_text(r.quote).split()) < 5]
    assert not short, f"quotes that are fragments, not sentences: {short}"


# --- load errors ---------------------------------------------------------------------------------

ERROR_CASES: list[tuple[str, str, list[str]]] = [
    # (case id, catalog text, substrings the error must contain besides the file name)
    (
        "bad-class-id",
        AUVY_CLASS.replace('"auvy-jobs-control"', '"AUVY_jobs"', 1),
        ["class 'AUVY_jobs'", "[a-z0-9-]+"],
    ),
    (
        "unknown-class-api",
        AUVY_CLASS.replace('api = "auvy"', 'api = "avuy"'),
        ["class 'auvy-jobs-control'", "unknown api 'avuy'", "did you mean 'auvy'"],
    ),
    (
        "empty-class-title",
        AUVY_CLASS.replace('"AUVY jobs: cancel, resume and input"', '" "'),
        [
            "class 'auvy-jobs-control'",
            "title is empty",
        ],
    ),
    (
        "unknown-class-key",
        AUVY_CLASS + 'descripton = "typo"\n',
        ["class 'auvy-jobs-control'", "unknown key 'descripton'", "did you mean 'description'"],
    ),
    (
        "missing-class-key",
        '[[class]]\nid = "auvy-jobs-control"\napi = "auvy"\n',
        ["class 'auvy-jobs-control'", "missing key 'title'"],
    ),
    (
        "class-without-id",
        '[[class]]\napi = "auvy"\ntitle = "t"\n',
        ["class '#1'", "missing key 'id'"],
    ),
    (
        "non-string-value",
        AUVY_CLASS + requirement(level="MUST").replace('level = "MUST"', "level = 1"),
        ["requirement 'auvy.jobs.cancel.terminal-400'", "'level' must be a string"],
    ),
    (
        "bad-requirement-id-single-segment",
        AUVY_CLASS + requirement("auvy"),
        ["requirement 'auvy'", "id must match"],
    ),
    (
        "bad-requirement-id-uppercase",
        AUVY_CLASS + requirement("auvy.Jobs.cancel"),
        ["requirement 'auvy.Jobs.cancel'", "id must match"],
    ),
    (
        "bad-requirement-id-empty-segment",
        AUVY_CLASS + requirement("auvy..cancel"),
        ["requirement 'auvy..cancel'", "id must match"],
    ),
    (
        "bad-requirement-id-leading-dash",
        AUVY_CLASS + requirement("auvy.-cancel"),
        ["requirement 'auvy.-cancel'", "id must match"],
    ),
    (
        "unknown-level",
        AUVY_CLASS + requirement(level="must"),
        ["requirement 'auvy.jobs.cancel.terminal-400'", "unknown level 'must'", "MUST, SHOULD"],
    ),
    (
        "unknown-class",
        AUVY_CLASS + requirement(cls="auvy-job-control"),
        [
            "requirement 'auvy.jobs.cancel.terminal-400'",
            "unknown class 'auvy-job-control'",
            "did you mean 'auvy-jobs-control'",
        ],
    ),
    (
        "api-mismatch",
        AUVY_CLASS + requirement("ava.jobs.cancel"),
        ["requirement 'ava.jobs.cancel'", "'ava' does not match the api 'auvy'"],
    ),
    (
        "empty-quote",
        AUVY_CLASS + requirement(quote=""),
        ["requirement 'auvy.jobs.cancel.terminal-400'", "quote is empty"],
    ),
    (
        "blank-quote",
        AUVY_CLASS + requirement(quote="  \\n "),
        ["requirement 'auvy.jobs.cancel.terminal-400'", "quote is empty"],
    ),
    (
        "empty-source",
        AUVY_CLASS + requirement(source=""),
        ["requirement 'auvy.jobs.cancel.terminal-400'", "source is empty"],
    ),
    (
        "source-is-a-path",
        AUVY_CLASS + requirement(source="../secrets/auvy-jobs-api.txt"),
        ["requirement 'auvy.jobs.cancel.terminal-400'", "bare file name"],
    ),
    (
        "unknown-requirement-key",
        AUVY_CLASS + requirement(extra='qoute = "typo"\n'),
        [
            "requirement 'auvy.jobs.cancel.terminal-400'",
            "unknown key 'qoute'",
            "did you mean 'quote'",
        ],
    ),
    (
        "unknown-top-level-key",
        AUVY_CLASS + '[[requirment]]\nid = "auvy.x"\n',
        ["unknown top-level key 'requirment'", "did you mean 'requirement'"],
    ),
    (
        "requirement-not-an-array-of-tables",
        AUVY_CLASS + '[requirement]\nid = "auvy.x"\n',
        ["'requirement' must be an array of tables"],
    ),
    (
        "duplicate-requirement-in-one-file",
        AUVY_CLASS + requirement() + requirement(),
        ["requirement 'auvy.jobs.cancel.terminal-400'", "duplicate id (already defined in"],
    ),
    ("invalid-toml", AUVY_CLASS + "quote = \n", ["not valid TOML"]),
    (
        "missing-authority",
        AUVY_CLASS + requirement().replace('authority = "document"\n', ""),
        ["requirement 'auvy.jobs.cancel.terminal-400'", "missing key 'authority'"],
    ),
    (
        "unknown-authority",
        AUVY_CLASS + requirement(authority="documents"),
        [
            "requirement 'auvy.jobs.cancel.terminal-400'",
            "unknown authority 'documents'",
            "document, facts, decision",
        ],
    ),
    (
        "facts-not-quoting-facts",
        AUVY_CLASS + requirement(authority="facts"),
        ["requirement 'auvy.jobs.cancel.terminal-400'", "a facts requirement quotes FACTS.md"],
    ),
    (
        "facts-quoted-as-document",
        AUVY_CLASS + requirement(source="FACTS.md"),
        ["requirement 'auvy.jobs.cancel.terminal-400'", "a quote of FACTS.md has authority facts"],
    ),
    (
        "facts-quoted-as-decision",
        AUVY_CLASS + requirement(source="FACTS.md", authority="decision"),
        ["requirement 'auvy.jobs.cancel.terminal-400'", "a quote of FACTS.md has authority facts"],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [(t, e) for _, t, e in ERROR_CASES], ids=[c for c, _, _ in ERROR_CASES]
)
def test_load_errors_name_the_file_and_entry(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    write(tmp_path, "auvy-broken.toml", text)

    error = load_error(tmp_path)

    assert "auvy-broken.toml" in str(error)
    for part in expected:
        assert part in str(error)


def test_each_authority_loads_and_decisions_are_told_apart(tmp_path: Path) -> None:
    write(
        tmp_path,
        "auvy.toml",
        AUVY_CLASS
        + requirement("auvy.a.document")
        + requirement("auvy.a.facts", source="FACTS.md", authority="facts")
        + requirement("auvy.a.decision", authority="decision", extra='note = "our choice"\n'),
    )

    catalog = load_catalog(tmp_path)

    authority = {r.id: (r.authority, r.is_decision) for r in catalog.requirements.values()}
    assert authority == {
        "auvy.a.document": ("document", False),
        "auvy.a.facts": ("facts", False),
        "auvy.a.decision": ("decision", True),
    }


def test_duplicate_class_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", AUVY_CLASS)
    write(tmp_path, "b.toml", AUVY_CLASS)

    error = load_error(tmp_path)

    assert error.problems == (
        "b.toml: class 'auvy-jobs-control': duplicate id (already defined in a.toml)",
    )


def test_duplicate_requirement_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", AUVY_CLASS + AUVY_REQUIREMENTS)
    write(tmp_path, "b.toml", requirement("auvy.jobs.input.shape-400"))

    error = load_error(tmp_path)

    assert error.problems == (
        "b.toml: requirement 'auvy.jobs.input.shape-400': duplicate id (already defined in a.toml)",
    )


def test_entries_without_ids_are_not_duplicates_of_each_other(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", '[[class]]\napi = "auvy"\ntitle = "t"\n')
    write(tmp_path, "b.toml", '[[class]]\napi = "auvy"\ntitle = "t"\n')

    problems = load_error(tmp_path).problems

    assert problems == (
        "a.toml: class '#1': missing key 'id'",
        "b.toml: class '#1': missing key 'id'",
    )


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", AUVY_CLASS + requirement(level="must"))
    write(tmp_path, "b.toml", requirement("auvy.x", quote=""))

    error = load_error(tmp_path)

    assert len(error.problems) == 2
    assert str(error).startswith("2 problems in the requirement catalog")
    assert "a.toml: requirement 'auvy.jobs.cancel.terminal-400'" in error.problems[0]
    assert "b.toml: requirement 'auvy.x'" in error.problems[1]


def test_an_unknown_key_does_not_hide_other_problems_of_the_entry(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", AUVY_CLASS + requirement(level="must", extra='qoute = "x"\n'))

    problems = load_error(tmp_path).problems

    assert [p.split(": ", 2)[2] for p in problems] == [
        "unknown key 'qoute' (did you mean 'quote'?)",
        "unknown level 'must'; use one of MUST, SHOULD, MAY",
    ]


def test_requirements_of_a_rejected_class_do_not_repeat_its_problem(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", AUVY_CLASS.replace('api = "auvy"', 'api = "nope"') + requirement())

    problems = load_error(tmp_path).problems

    assert len(problems) == 1
    assert "unknown api 'nope'" in problems[0]


# --- lookups -------------------------------------------------------------------------------------


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    write(tmp_path, "auvy.toml", AUVY_CLASS + AUVY_REQUIREMENTS)
    write(tmp_path, "strait.toml", STRAIT)
    return load_catalog(tmp_path)


def test_get_returns_the_requirement(catalog: Catalog) -> None:
    assert catalog.get("strait.runs.list").level == "MAY"


def test_get_unknown_id_suggests_the_closest_ids(catalog: Catalog) -> None:
    with pytest.raises(CatalogError) as info:
        catalog.get("auvy.jobs.cancel.terminal-404")

    message = str(info.value)
    assert "'auvy.jobs.cancel.terminal-404'" in message
    assert "closest known ids: auvy.jobs.cancel.terminal-400" in message


def test_get_unknown_id_without_a_close_match(catalog: Catalog) -> None:
    with pytest.raises(CatalogError, match="no similar id is known"):
        catalog.get("zzz.qqq")


def test_for_api_keeps_only_that_api(catalog: Catalog) -> None:
    auvy = catalog.for_api("auvy")
    assert list(auvy.classes) == ["auvy-jobs-control"]
    assert list(auvy.requirements) == ["auvy.jobs.cancel.terminal-400", "auvy.jobs.input.shape-400"]
    assert list(catalog.for_api("strait").requirements) == ["strait.runs.list"]
    assert catalog.for_api("ava") == Catalog()


def test_for_api_rejects_an_unknown_api(catalog: Catalog) -> None:
    with pytest.raises(CatalogError, match="unknown api 'auvi'"):
        catalog.for_api("auvi")


# --- quotes --------------------------------------------------------------------------------------


def make_requirement(quote: str, source: str = "doc.txt") -> Requirement:
    return Requirement(
        id="auvy.x.y", level="MUST", conformance_class="c", source=source, quote=quote
    )


@pytest.mark.parametrize(
    "quote",
    [
        "Trace chat's POST /v1/chat/:traceId also returns a job_id",  # curly in the source
        'an optional Redis key may be used internally for early "queued" visibility.',
        "an optional Redis key may be used internally for early \u201cqueued\u201d visibility.",
        "Query: after (optional) - Redis stream id",  # em dash in the source
        "Query: after (optional) \u2013 Redis stream id",  # en dash against em dash
        "Redis   stream\n id in the\tform 12345-0.",
        "  Returns 400 if job is\nalready completed or failed.  ",
        "\u2018single\u2019 quotes",
    ],
)
def test_quote_found_modulo_whitespace_and_typography(tmp_path: Path, quote: str) -> None:
    (tmp_path / "doc.txt").write_text(
        "Trace chat\u2019s POST /v1/chat/:traceId also returns a job_id for the same queue.\n"
        "Status is authoritative; an optional Redis key may be used internally for early\n"
        "\u201cqueued\u201d visibility.\n"
        "Query: after (optional) \u2014 Redis stream id in the form 12345-0.\n"
        "Returns 400 if job is already\u00a0completed or failed.\n"
        "'single' quotes\n",
        encoding="utf-8",
    )
    assert quote_in_source(make_requirement(quote), tmp_path)


@pytest.mark.parametrize(
    "quote",
    [
        "Returns 404 if job is already completed or failed.",
        "returns 400 if job is already completed or failed.",  # case matters: it is a quote
        "Returns 400 ifjob is already completed",
    ],
)
def test_quote_not_found(tmp_path: Path, quote: str) -> None:
    (tmp_path / "doc.txt").write_text(
        "Returns 400 if job is already completed or failed.\n", encoding="utf-8"
    )
    assert not quote_in_source(make_requirement(quote), tmp_path)


def test_quote_in_missing_source_raises(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"'missing\.txt' not found"):
        quote_in_source(make_requirement("x", source="missing.txt"), tmp_path)


def test_normalise_text() -> None:
    assert normalise_text(" \u201ca\u201d \u2014\n\t\u2018b\u2019 \u2013 c ") == "\"a\" - 'b' - c"
