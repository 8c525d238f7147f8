"""The requirement catalog: addressable requirement ids grouped in conformance classes.

The catalog is data, not code: it lives in the ``*.toml`` files of this folder so that the people
who read the source documents can maintain it without touching the suite. Each requirement quotes
the sentence of its source document verbatim, so every test result can be traced back to the text
that justifies it (in the spirit of the OGC API ModSpec).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, get_args

__all__ = [
    "APIS",
    "AUTHORITIES",
    "FACTS_SOURCE",
    "LEVELS",
    "Authority",
    "Catalog",
    "CatalogError",
    "ConformanceClass",
    "Level",
    "Requirement",
    "load_catalog",
    "normalise_text",
    "quote_in_source",
]

Level = Literal["MUST", "SHOULD", "MAY"]
LEVELS: Final[tuple[Level, ...]] = get_args(Level)
# What gives a requirement its force. `document`: a sentence of the seed documents, quoted.
# `facts`: a published fact about the real system, quoted from FACTS.md where the documents are
# silent. `decision`: the reference server's own choice where both are silent; it is checked
# against the reference server only and never fails a run against another target.
Authority = Literal["document", "facts", "decision"]
AUTHORITIES: Final[tuple[Authority, ...]] = get_args(Authority)
FACTS_SOURCE: Final = "FACTS.md"
APIS: Final[tuple[str, ...]] = ("auvy", "ava", "strait")

_CLASS_ID = re.compile(r"[a-z0-9-]+")
_REQUIREMENT_ID = re.compile(r"[a-z0-9]+(\.[a-z0-9][a-z0-9-]*)+")

_CLASS_REQUIRED: Final = ("id", "api", "title")
_CLASS_OPTIONAL: Final = ("description",)
_REQUIREMENT_REQUIRED: Final = ("id", "level", "class", "authority", "source", "quote")
_REQUIREMENT_OPTIONAL: Final = ("note",)
_TOP_LEVEL: Final = ("class", "requirement")

# Source documents were pasted from web pages and word processors, so the same sentence may use
# curly or straight quotes depending on who typed it; neither side should have to match the other.
_TYPOGRAPHIC: Final = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)
_WHITESPACE = re.compile(r"\s+")


class CatalogError(Exception):
    """The catalog is malformed, or code asked it about an id it does not hold."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[str, ...] = problems or (message,)


@dataclass(frozen=True)
class ConformanceClass:
    id: str
    api: str
    title: str
    description: str = ""


@dataclass(frozen=True)
class Requirement:
    id: str
    level: Level
    conformance_class: str
    source: str
    quote: str
    note: str = ""
    authority: Authority = "document"

    @property
    def api(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def is_decision(self) -> bool:
        return self.authority == "decision"


@dataclass(frozen=True)
class Catalog:
    """Classes and requirements by id; iteration order is catalog order (file, then position)."""

    classes: Mapping[str, ConformanceClass] = field(default_factory=dict)
    requirements: Mapping[str, Requirement] = field(default_factory=dict)

    def for_api(self, api: str) -> Catalog:
        # An unknown api would silently yield an empty catalog and a vacuously conformant report.
        if api not in APIS:
            raise CatalogError(f"unknown api {api!r}; known apis: {', '.join(APIS)}")
        return Catalog(
            classes={k: c for k, c in self.classes.items() if c.api == api},
            requirements={k: r for k, r in self.requirements.items() if r.api == api},
        )

    def get(self, req_id: str) -> Requirement:
        try:
            return self.requirements[req_id]
        except KeyError:
            close = difflib.get_close_matches(req_id, list(self.requirements), n=3, cutoff=0.6)
            hint = f"closest known ids: {', '.join(close)}" if close else "no similar id is known"
            raise CatalogError(f"unknown requirement id {req_id!r}; {hint}") from None


def _as_level(value: str) -> Level | None:
    # Returns the member of LEVELS rather than the input so the type narrows to the Literal.
    for level in LEVELS:
        if level == value:
            return level
    return None


def _as_authority(value: str) -> Authority | None:
    for authority in AUTHORITIES:
        if authority == value:
            return authority
    return None


def _suggest(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Loader:
    """Collects every problem of every file so one run shows the author all of them at once."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.classes: dict[str, ConformanceClass] = {}
        self.class_files: dict[str, str] = {}
        self.requirements: dict[str, Requirement] = {}
        self.requirement_files: dict[str, str] = {}
        # Requirements of a class that was itself rejected would only repeat its problem.
        self.rejected_classes: set[str] = set()

    def problem(self, file: str, what: str, entry_id: str, message: str) -> None:
        self.problems.append(f"{file}: {what} {entry_id!r}: {message}")

    def check_keys(
        self,
        file: str,
        what: str,
        entry_id: str,
        entry: Mapping[str, object],
        required: tuple[str, ...],
        optional: tuple[str, ...],
    ) -> tuple[bool, bool]:
        """(usable, ok): unknown keys make the entry invalid but its other fields are still
        checked; missing or non-string fields make further checks meaningless."""
        allowed = required + optional
        unknown = [key for key in entry if key not in allowed]
        for key in unknown:
            self.problem(file, what, entry_id, f"unknown key {key!r}{_suggest(key, allowed)}")
        usable = True
        for key in required:
            if key not in entry:
                self.problem(file, what, entry_id, f"missing key {key!r}")
                usable = False
        for key in allowed:
            if key in entry and not isinstance(entry[key], str):
                self.problem(file, what, entry_id, f"{key!r} must be a string")
                usable = False
        return usable, usable and not unknown

    def entries(
        self, file: str, data: Mapping[str, object], key: str
    ) -> list[tuple[str, Mapping[str, object]]]:
        raw = data.get(key, [])
        if not isinstance(raw, list):
            self.problems.append(f"{file}: {key!r} must be an array of tables ([[{key}]])")
            return []
        found: list[tuple[str, Mapping[str, object]]] = []
        for position, entry in enumerate(raw, start=1):
            if not isinstance(entry, dict):
                self.problems.append(f"{file}: {key} #{position} is not a table")
                continue
            entry_id = entry.get("id")
            found.append((entry_id if isinstance(entry_id, str) else f"#{position}", entry))
        return found

    def add_class(self, file: str, entry_id: str, entry: Mapping[str, object]) -> None:
        what = "class"
        if isinstance(entry.get("id"), str) and entry_id in self.class_files:
            # The first definition stands (or stays rejected); this one is only reported.
            first = self.class_files[entry_id]
            self.problem(file, what, entry_id, f"duplicate id (already defined in {first})")
            return
        self.class_files[entry_id] = file
        usable, ok = self.check_keys(file, what, entry_id, entry, _CLASS_REQUIRED, _CLASS_OPTIONAL)
        if not usable:
            self.rejected_classes.add(entry_id)
            return
        api, title = str(entry["api"]), str(entry["title"])
        if not _CLASS_ID.fullmatch(entry_id):
            self.problem(file, what, entry_id, "id must match [a-z0-9-]+")
            ok = False
        if api not in APIS:
            self.problem(file, what, entry_id, f"unknown api {api!r}{_suggest(api, APIS)}")
            ok = False
        if not title.strip():
            self.problem(file, what, entry_id, "title is empty")
            ok = False
        if ok:
            self.classes[entry_id] = ConformanceClass(
                id=entry_id, api=api, title=title, description=str(entry.get("description", ""))
            )
        else:
            self.rejected_classes.add(entry_id)

    def add_requirement(self, file: str, entry_id: str, entry: Mapping[str, object]) -> None:
        what = "requirement"
        if isinstance(entry.get("id"), str) and entry_id in self.requirement_files:
            first = self.requirement_files[entry_id]
            self.problem(file, what, entry_id, f"duplicate id (already defined in {first})")
            return
        self.requirement_files[entry_id] = file
        usable, ok = self.check_keys(
            file, what, entry_id, entry, _REQUIREMENT_REQUIRED, _REQUIREMENT_OPTIONAL
        )
        if not usable:
            return
        level, class_id = _as_level(str(entry["level"])), str(entry["class"])
        source, quote = str(entry["source"]), str(entry["quote"])
        if not _REQUIREMENT_ID.fullmatch(entry_id):
            self.problem(file, what, entry_id, r"id must match ^[a-z0-9]+(\.[a-z0-9][a-z0-9-]*)+$")
            ok = False
        if level is None:
            self.problem(
                file,
                what,
                entry_id,
                f"unknown level {entry['level']!r}; use one of {', '.join(LEVELS)}",
            )
            ok = False
        conformance_class = self.classes.get(class_id)
        if class_id in self.rejected_classes and conformance_class is None:
            ok = False
        elif conformance_class is None:
            self.problem(
                file,
                what,
                entry_id,
                f"unknown class {class_id!r}{_suggest(class_id, tuple(self.classes))}",
            )
            ok = False
        elif entry_id.split(".", 1)[0] != conformance_class.api:
            self.problem(
                file,
                what,
                entry_id,
                f"id prefix {entry_id.split('.', 1)[0]!r} does not match the api "
                f"{conformance_class.api!r} of class {class_id!r}",
            )
            ok = False
        if not source.strip():
            self.problem(file, what, entry_id, "source is empty")
            ok = False
        elif Path(source).name != source:
            # quote_in_source joins it onto the seeds folder; a path would escape or nest it.
            self.problem(file, what, entry_id, "source must be a bare file name, not a path")
            ok = False
        if not quote.strip():
            self.problem(file, what, entry_id, "quote is empty")
            ok = False
        authority = _as_authority(str(entry["authority"]))
        if authority is None:
            self.problem(
                file,
                what,
                entry_id,
                f"unknown authority {entry['authority']!r}; use one of {', '.join(AUTHORITIES)}",
            )
            ok = False
        elif authority == "facts" and source != FACTS_SOURCE:
            self.problem(file, what, entry_id, f"a facts requirement quotes {FACTS_SOURCE}")
            ok = False
        elif authority != "facts" and source == FACTS_SOURCE:
            self.problem(file, what, entry_id, f"a quote of {FACTS_SOURCE} has authority facts")
            ok = False
        if ok and level is not None and authority is not None:
            self.requirements[entry_id] = Requirement(
                id=entry_id,
                level=level,
                conformance_class=class_id,
                source=source,
                quote=quote,
                note=str(entry.get("note", "")),
                authority=authority,
            )


def load_catalog(directory: Path | None = None) -> Catalog:
    """Read and merge every ``*.toml`` of ``directory`` (default: this package's folder).

    Raises CatalogError listing every problem found, each naming its file and entry id.
    """
    folder = Path(__file__).parent if directory is None else directory
    loader = _Loader()
    parsed: list[tuple[str, dict[str, object]]] = []
    for path in sorted(folder.glob("*.toml"), key=lambda p: p.name):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            loader.problems.append(f"{path.name}: not valid TOML: {exc}")
            continue
        for key in data:
            if key not in _TOP_LEVEL:
                loader.problems.append(
                    f"{path.name}: unknown top-level key {key!r}{_suggest(key, _TOP_LEVEL)}"
                )
        parsed.append((path.name, data))
    # Classes first across all files, so a requirement may sit in another file than its class.
    for file, data in parsed:
        for entry_id, entry in loader.entries(file, data, "class"):
            loader.add_class(file, entry_id, entry)
    for file, data in parsed:
        for entry_id, entry in loader.entries(file, data, "requirement"):
            loader.add_requirement(file, entry_id, entry)
    if loader.problems:
        count = len(loader.problems)
        raise CatalogError(
            f"{count} problem{'s' if count > 1 else ''} in the requirement catalog "
            f"({folder}):\n" + "\n".join(f"  {p}" for p in loader.problems),
            tuple(loader.problems),
        )
    return Catalog(classes=loader.classes, requirements=loader.requirements)


def normalise_text(text: str) -> str:
    """The form in which a quote is compared with its source document."""
    return _WHITESPACE.sub(" ", text.translate(_TYPOGRAPHIC)).strip()


def quote_in_source(req: Requirement, seeds_dir: Path) -> bool:
    """Whether the requirement's quote appears in its source document, modulo whitespace and
    typographic quotes/dashes. A missing source file raises CatalogError: it is a wrong ``source``,
    not a misquote, and should be reported as such."""
    # FACTS.md sits beside the seeds folder, as in ../shared.
    path = (seeds_dir.parent if req.source == FACTS_SOURCE else seeds_dir) / req.source
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(
            f"requirement {req.id!r}: source document {req.source!r} not found in {seeds_dir}"
        ) from None
    return normalise_text(req.quote) in normalise_text(text)
