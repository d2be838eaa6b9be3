"""Case options: each option maps one token of a case id to a JSON-safe value and back.

A case id is ``format`` or ``format/tok-tok-...`` with one token per option that differs from
its default, in the order the adapter declares its options, so every id round-trips:
``case_id(parse(id)) == id`` for canonical ids.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fmtbench.errors import InvalidCaseError

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


@dataclass(frozen=True)
class Option:
    """Base of case options: a name, a default and the help line `fmtbench cases` shows."""

    name: str
    default: Any
    help: str = ""
    #: "file": the option changes the bytes written; "read": only how the file is read (a cache),
    #: so cases that differ only in such options share one file and its write figures.
    affects: str = field(default="file", kw_only=True)

    def parse(self, token: str) -> tuple[bool, Any]:
        """(True, value) if token belongs to this option, else (False, None)."""
        raise NotImplementedError

    def token(self, value: Any) -> str:
        """The id token for value ('' for the default)."""
        raise NotImplementedError

    def describe(self) -> str:
        """The valid tokens, for help and error messages."""
        raise NotImplementedError

    def validate(self, value: Any) -> Any:
        ok, parsed = self.parse(self.token(value)) if value != self.default else (True, value)
        if not ok or parsed != value:
            raise ValueError(f"invalid value {value!r} for option {self.name!r}; valid: {self.describe()}")
        return value


@dataclass(frozen=True)
class Choice(Option):
    """One of a fixed set of tokens, e.g. compression none|snappy|zstd."""

    choices: Mapping[str, Any] = field(default_factory=dict)

    def parse(self, token: str) -> tuple[bool, Any]:
        return (True, self.choices[token]) if token in self.choices else (False, None)

    def token(self, value: Any) -> str:
        if value == self.default:
            return ""
        for tok, val in self.choices.items():
            if val == value:
                return tok
        raise ValueError(f"invalid value {value!r} for option {self.name!r}; valid: {self.describe()}")

    def describe(self) -> str:
        return "|".join(self.choices)


@dataclass(frozen=True)
class Flag(Option):
    """A boolean that is on when its token is present, e.g. ``fletcher32``."""

    default: Any = False
    flag: str = ""

    def parse(self, token: str) -> tuple[bool, Any]:
        return (True, True) if token == (self.flag or self.name) else (False, None)

    def token(self, value: Any) -> str:
        if not isinstance(value, bool):
            raise ValueError(f"option {self.name!r} is a flag; got {value!r}")
        return (self.flag or self.name) if value else ""

    def describe(self) -> str:
        return self.flag or self.name


@dataclass(frozen=True)
class Size(Option):
    """A positive integer behind a prefix, with optional k/m/g units: ``chunk1024``, ``cache64m``."""

    prefix: str = ""
    units: bool = False
    minimum: int = 1
    maximum: int | None = None
    #: a word that also parses to the default (which the id leaves out): ``contiguous``
    default_word: str = ""

    def parse(self, token: str) -> tuple[bool, Any]:
        if self.default_word and token == self.default_word:
            return True, self.default
        unit = "([kmg]?)" if self.units else "()"
        m = re.fullmatch(re.escape(self.prefix) + r"(\d+)" + unit, token)
        if not m:
            return False, None
        value = int(m.group(1)) * _UNITS[m.group(2)]
        if self.maximum is not None and value > self.maximum:
            raise InvalidCaseError(f"option {token!r}: {self.name} must be at most {self.token(self.maximum)}")
        return (True, value) if value >= self.minimum else (False, None)

    def token(self, value: Any) -> str:
        if value == self.default:
            return ""
        if not isinstance(value, int) or isinstance(value, bool) or value < self.minimum:
            raise ValueError(f"option {self.name!r} needs an integer >= {self.minimum}; got {value!r}")
        if self.units:
            for unit in ("g", "m", "k"):
                if value % _UNITS[unit] == 0:
                    return f"{self.prefix}{value // _UNITS[unit]}{unit}"
        return f"{self.prefix}{value}"

    def describe(self) -> str:
        form = f"{self.prefix}<N{'[k|m|g]' if self.units else ''}>"
        return f"{form}|{self.default_word}" if self.default_word else form
