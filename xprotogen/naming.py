"""Plural names, the way xosgenx 4.0.4 forms them (it uses inflect 2.1.0).

inflect treats a capitalised word as a proper noun, so `Policy` becomes `Policys`
while `policy` becomes `policies`; sibilant endings still take `es`, and a few
irregular nouns keep their irregular plural. `tests/data/plurals.tsv` pins the
results against the real library for every model name of the corpus.
"""

from __future__ import annotations

import re

_IRREGULAR = {
    "person": "people",
    "child": "children",
    "leaf": "leaves",
    "man": "men",
    "woman": "women",
    "mouse": "mice",
    "foot": "feet",
    "tooth": "teeth",
    "goose": "geese",
}
_SIBILANT = re.compile(r"(?:s|sh|ch|x|z)$")
_LAST_WORD = re.compile(r"[A-Z]?[a-z]+$")


def pluralize(name: str) -> str:
    """The plural of a model or field name."""
    if len(name) == 1 and name.isupper():
        return name + "S"
    last = _LAST_WORD.search(name)
    if last:
        word = last.group(0)
        irregular = _IRREGULAR.get(word.lower())
        if irregular is not None:
            if word[0].isupper():
                irregular = irregular.capitalize()
            return name[: last.start()] + irregular
    if _SIBILANT.search(name):
        return name + "es"
    if name[0].islower() and re.search(r"[^aeiou]y$", name):
        return name[:-1] + "ies"
    return name + "s"
