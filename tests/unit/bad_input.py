"""Shared pieces of the property-based bad-input tests (tests/unit/test_bad_input_*.py).

* ``PROFILE``: Hypothesis settings for CI: derandomized (the same examples on every run, so a
  failure is reproducible from the log alone), no example database, no deadline (CPU is shared).
  ``BERTH_FUZZ_SCALE=10`` multiplies every property's example count for a longer local run.
* ``count(kind)``: each property calls it once per generated case; tests/unit/conftest.py
  prints the totals at the end of the run ("bad input: N generated cases ..."), with the
  outcomes recorded by ``outcome(what)``.
* ``assert_clear_error``: what "refused with one clear error" means, checked the same way
  everywhere: a non-empty message, no traceback, no Python object reprs, one line per problem.
* Strategies for the kinds of text people and attackers type.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from html.parser import HTMLParser

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

SCALE = max(1, int(os.environ.get("BERTH_FUZZ_SCALE", "1")))

PROFILE = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def examples(n: int) -> settings:
    """``PROFILE`` with ``n`` examples (times ``BERTH_FUZZ_SCALE``)."""
    return settings(PROFILE, max_examples=n * SCALE)


CASES: Counter[str] = Counter()
OUTCOMES: Counter[str] = Counter()


def count(kind: str) -> None:
    CASES[kind] += 1


def outcome(what: str) -> None:
    """How a case ended ("berth.yaml accepted"), reported next to the totals."""
    OUTCOMES[what] += 1


# --- what a clear refusal looks like --------------------------------------------------------

# Text that means Python internals leaked into a message meant for a person.
_NOISE = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|"
    r" object at 0x[0-9a-f]+|<class '|<function |"
    r"\bdatetime\.(date|datetime|time)\(|\bDecimal\(|\bSecretStr\(|\bPosixPath\(|"
    r"For further information visit|errors\.pydantic\.dev|\binput_value=|\binput_type=|"
    r"pydantic_core|ValidationError|\bKeyError\b|\bIndexError\b|\bTypeError\b|"
    r"\bAttributeError\b|\bRecursionError\b|\bUnicode(En|De)codeError\b"
)


def assert_clear_error(message: str, *, lines_start_with: str | None = None) -> None:
    """One clear error: non-empty, free of Python noise, every line a statement of its own.

    With ``lines_start_with`` (e.g. the config file's path), every line must name it: a
    config error has one line per problem, each ``FILE[:LINE]: KEY: what is wrong``.
    """
    assert message.strip(), "empty error message"
    noise = _NOISE.search(message)
    assert noise is None, f"Python internals in the message: {noise.group(0)!r} in {message!r}"
    for line in message.splitlines():
        assert line.strip(), f"blank line inside the message {message!r}"
        if lines_start_with is not None and not line.startswith("... and "):
            assert line.startswith(lines_start_with), f"line does not name the file: {line!r}"


# --- strategies -----------------------------------------------------------------------------

# Everything a Python str can hold, lone surrogates included: they come from `\ud800` escapes
# in YAML and JSON, and from non-UTF-8 bytes in argv (decoded with surrogateescape).
any_char = st.characters(codec=None, exclude_categories=())
tricky_chars = st.sampled_from(
    [
        *"-_.:/\\@#%?&=+ \t\n\r'\"`$[]{}<>()!*~|,;",
        *("\x00", "\x7f", "\u00e9", "\u00c9", "\u0131", "\u212a", "\u00df", "\ufb01"),
        *("\u200b", "\u202e", "\ufeff", "\ud800", "\udcff", "\U0001f600", "\u3000", "\u0085"),
    ]
)
#: Names as people and attackers type them: mostly short ASCII, with every kind of oddity.
names = st.one_of(
    st.text(st.sampled_from("abcxyz019"), max_size=12),
    st.text(st.one_of(st.sampled_from("abAB09"), tricky_chars), max_size=16),
    st.text(any_char, max_size=24),
    st.text(st.sampled_from("a-_."), min_size=200, max_size=400),
)


# --- the options form as a browser sees and submits it -------------------------------------


class OptionValues(HTMLParser):
    """The ``value`` of every ``<option>`` of a form, as a browser reads it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.values: list[str] = []
        self.selected: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "option":
            found = dict(attrs)
            self.values.append(found["value"] or "")
            if "selected" in found:
                self.selected.append(found["value"] or "")


def option_values(form: str) -> list[str]:
    parser = OptionValues()
    parser.feed(form)
    parser.close()
    return parser.values


def as_a_browser_sends(value: str) -> str:
    """A form value after the browser: HTML reads CR and CR LF as LF and NUL as U+FFFD, and
    form submission writes every line break as CR LF."""
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")
    return value.replace("\n", "\r\n")
