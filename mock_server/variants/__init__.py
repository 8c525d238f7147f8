"""Variants: switches that make the reference server a *different but conformant* implementation.

The documents leave choices open (201 or 202, 401 or 403, 400 or 422, ...) and HTTP and SSE allow
many framings (gzip, CRLF line ends, tiny chunks, extra fields, latency). Each switch here makes the
other allowed answer, so the project can prove that the conformance suite accepts every allowed
answer (`tests/conformance/test_variants.py` runs the whole suite against every preset), and
frontend developers can check that their clients survive the same wire differences.

A server profile may carry a `[variant]` table with one sub-table per area
(`[variant.wire]`, `[variant.auvy]`, `[variant.ava]`, `[variant.strait]`) and a `presets` list
of named presets, applied first; `--variant NAME` (repeatable) applies a named preset on top.
Every switch defaults to the reference behaviour.
Each area's switches live in the module named for it; this module only composes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from . import auvy, ava, strait, wire

__all__ = ["PRESETS", "Variant", "VariantError", "apply_presets", "variant_from_table"]


class VariantError(ValueError):
    pass


@dataclass(frozen=True)
class Variant:
    wire: wire.WireVariant = field(default_factory=wire.WireVariant)
    auvy: auvy.AuvyVariant = field(default_factory=auvy.AuvyVariant)
    ava: ava.AvaVariant = field(default_factory=ava.AvaVariant)
    strait: strait.StraitVariant = field(default_factory=strait.StraitVariant)

    @property
    def active(self) -> bool:
        return self != Variant()

    def describe(self) -> list[str]:
        """One line per switch that differs from the reference, for the banner."""
        lines = []
        for area in fields(self):
            part = getattr(self, area.name)
            default = type(part)()
            for f in fields(part):
                value = getattr(part, f.name)
                if value != getattr(default, f.name):
                    lines.append(f"{area.name}.{f.name} = {value!r}")
        return lines


AREAS: dict[str, type] = {
    "wire": wire.WireVariant,
    "auvy": auvy.AuvyVariant,
    "ava": ava.AvaVariant,
    "strait": strait.StraitVariant,
}

# A preset is a partial [variant] table. "choices" makes every other allowed answer at once; each
# area may add presets of its own (wire: "wire", "wire-cr", "latency", "slow").
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "choices": {
        "auvy": dict(auvy.OTHER_CHOICES),
        "ava": dict(ava.OTHER_CHOICES),
        "strait": dict(strait.OTHER_CHOICES),
    },
    **{name: {"wire": dict(table)} for name, table in wire.PRESETS.items()},
    # The live Strait system's shapes where FACTS.md records a deviation (`[variant] presets =
    # ["strait-live"]` in a server profile, or `--variant strait-live`).
    "strait-live": {"strait": dict(strait.LIVE)},
}

T = TypeVar("T")


def _area(cls: type[T], current: T, raw: object, where: str) -> T:
    if not isinstance(raw, Mapping):
        raise VariantError(f"{where} must be a table")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise VariantError(f"unknown key(s) in {where}: {', '.join(unknown)}")
    changes: dict[str, Any] = {}
    for name, value in raw.items():
        default = getattr(cls(), name)
        # Checked at load: a string where a number belongs would only fail at the first request.
        expected = type(default)
        if isinstance(default, bool) != isinstance(value, bool) or (
            not isinstance(default, bool)
            and not isinstance(value, expected)
            and not (isinstance(default, float) and isinstance(value, int))
        ):
            raise VariantError(f"{where} {name} must be a {expected.__name__}, got {value!r}")
        changes[name] = float(value) if isinstance(default, float) else value
    result = replace(current, **changes)  # type: ignore[type-var]
    check = getattr(result, "check", None)
    if check is not None:
        problem = check()
        if problem:
            raise VariantError(f"{where}: {problem}")
    return result


def variant_from_table(raw: object, base: Variant | None = None) -> Variant:
    """A [variant] table (sub-tables per area) applied over `base` (default: the reference)."""
    if not isinstance(raw, Mapping):
        raise VariantError("[variant] must be a table")
    unknown = sorted(set(raw) - set(AREAS) - {"presets"})
    if unknown:
        raise VariantError(
            f"unknown key(s) in [variant]: {', '.join(unknown)} "
            f"(areas: {', '.join(AREAS)}; or presets)"
        )
    variant = base or Variant()
    names = raw.get("presets", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise VariantError("[variant] presets must be a list of preset names")
    # First, so that the profile's own switches refine the presets it names.
    variant = apply_presets(variant, names)
    for name, cls in AREAS.items():
        if name in raw:
            part = _area(cls, getattr(variant, name), raw[name], f"[variant.{name}]")
            variant = replace(variant, **{name: part})
    return variant


def apply_presets(variant: Variant, names: Iterable[str]) -> Variant:
    for name in names:
        if name not in PRESETS:
            raise VariantError(f"unknown variant {name!r}; known: {', '.join(sorted(PRESETS))}")
        variant = variant_from_table(PRESETS[name], variant)
    return variant
