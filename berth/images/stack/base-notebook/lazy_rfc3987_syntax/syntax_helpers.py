"""rfc3987_syntax's helpers, with every parser built when it is first used (Berth base-notebook).

The published rfc3987_syntax 1.1.0 builds 40 Earley parsers from its grammar while it is being
imported, about 1.4 s of CPU. jsonschema imports it for its "iri" and "iri-reference" format
checkers, jupyter_events imports jsonschema, and jupyter_server imports jupyter_events: so every
Jupyter server paid that second before it could answer, although most never check an IRI.

This module keeps the package's public names and behaviour (parse, is_valid_syntax,
make_syntax_validator, syntax_parser, the is_valid_syntax_<rule> validators, the constants) but
builds a parser, and imports lark, only when a name that needs it is first used. The image's
Dockerfile installs it over the published file after checking that file's sha256, so a new
upstream release is looked at again rather than silently replaced.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from rfc3987_syntax.utils import load_grammar

RFC3987_SYNTAX_PARSER_TYPE: str = "earley"
RFC3987_SYNTAX_GRAMMAR_PATH: Path = Path(__file__).parent / "syntax_rfc3987.lark"
# The published list, value for value (its "irelative_part" "ihier_part" lacks a comma upstream,
# so the two names arrive joined; kept so that code reading the list sees what it always saw).
RFC3987_SYNTAX_TERMS: list[str] = [
    "iri", "iri_reference", "absolute_iri", "scheme", "irelative_ref", "irelative_partihier_part",
    "iauthority", "iuserinfo", "ihost", "ireg_name", "ipath_abempty", "isegment", "isegment_nz",
    "isegment_nz_nc", "ipchar", "iquery", "ifragment", "iunreserved", "ucschar", "iprivate",
    "sub_delims", "ip_literal", "ipvfuture", "ipv6address", "h16", "ls32", "ipv4address",
    "dec_octet", "digit", "non_zero", "unreserved", "alpha", "hexdig", "port", "pct_encoded",
]  # fmt: skip

grammar: str = load_grammar(RFC3987_SYNTAX_GRAMMAR_PATH)

# The grammar rules that have a ready-made module-level validator, is_valid_syntax_<rule>.
VALIDATOR_RULES: tuple[str, ...] = (
    "iri", "iri_reference", "absolute_iri", "irelative_ref", "irelative_part", "ihier_part",
    "iauthority", "iuserinfo", "ihost", "ireg_name", "ipath", "ipath_abempty", "ipath_absolute",
    "ipath_noscheme", "ipath_rootless", "ipath_empty", "isegment", "isegment_nz", "isegment_nz_nc",
    "ipchar", "iquery", "ifragment", "iunreserved", "ucschar", "iprivate", "sub_delims",
    "ip_literal", "ipvfuture", "ipv6address", "h16", "ls32", "ipv4address", "dec_octet",
    "unreserved", "alpha", "digit", "hexdig", "port",
)  # fmt: skip
_VALIDATOR_PREFIX = "is_valid_syntax_"
_LARK_NAMES = ("Lark", "ParseTree", "exceptions")  # lark's names the published module re-exports
_building = threading.Lock()  # two threads validating at once build each parser once


def _lark() -> Any:
    import lark

    return lark


def make_syntax_validator(rule_name: str):
    """A function telling whether a text matches one grammar rule (builds its parser now)."""
    lark = _lark()
    parser = lark.Lark(grammar, start=rule_name, parser=RFC3987_SYNTAX_PARSER_TYPE)

    def syntax_validator(text):
        try:
            parser.parse(text)
            return True
        except lark.exceptions.LarkError:
            return False

    return syntax_validator


def parse(term: str, value: str):
    parser = globals().get("syntax_parser") or __getattr__("syntax_parser")
    return parser.parse(value, start=term)


def is_valid_syntax(term: str, value: str):
    try:
        parse(term=term, value=value)
        return True
    except _lark().exceptions.LarkError:
        return False


def _build(name: str) -> Any:
    if name == "syntax_parser":
        lark = _lark()
        starts = ["iri", "iri_reference", "absolute_iri"]
        return lark.Lark(grammar, start=starts, parser=RFC3987_SYNTAX_PARSER_TYPE)
    if name in _LARK_NAMES:
        return getattr(_lark(), name)
    rule = name.removeprefix(_VALIDATOR_PREFIX)
    if name.startswith(_VALIDATOR_PREFIX) and rule in VALIDATOR_RULES:
        return make_syntax_validator(rule)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __getattr__(name: str) -> Any:
    """Builds a lazy name on first use and keeps it as a plain module global from then on."""
    with _building:
        if name not in globals():
            globals()[name] = _build(name)
        return globals()[name]


def __dir__() -> list[str]:
    lazy = ["syntax_parser", *_LARK_NAMES, *(_VALIDATOR_PREFIX + rule for rule in VALIDATOR_RULES)]
    return sorted(set(globals()) | set(lazy))
