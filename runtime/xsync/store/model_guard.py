"""The models a store was made for, and whether other models may open it.

A store keeps the text of the models it last opened with (each file in the canonical layout
of `xsgen fmt`, so a change of layout or comments is no change). Opening it with other models
runs the rules of `xsgen breaking` from the kept ones to the new ones: a change that breaks
the stored data, the API or the synchronizers is refused with its findings, unless the
caller says the data was migrated; anything else goes ahead (`migrate.evolve` adds what is
new) and the new models are kept.
"""

from __future__ import annotations

import json
from pathlib import PurePath

from xprotogen.breaking import find_breaking_changes
from xprotogen.diagnostics import format_plain
from xprotogen.printer import print_file
from xprotogen.revisions import schema_of
from xprotogen.schema import Schema

from .base import StoreError

MODELS_KEY = "models"  # the key of the kept models in the store's meta table
_FORMAT = 1


class BreakingModelChange(StoreError):
    """The models given break what the store holds; the message lists every finding."""


def model_record(schema: Schema) -> str:
    """What the store keeps of `schema`: each file's name and canonical text, as JSON."""
    files = [[PurePath(f.path).name, print_file(f)] for f in schema.files]
    return json.dumps({"format": _FORMAT, "files": files})


def check_models(kept: str | None, current: str, schema: Schema, *, store: str) -> None:
    """Raise `BreakingModelChange` when `schema` (recorded as `current`) breaks the `kept` models.

    A store with nothing kept (new, or made before models were kept) accepts any models.
    """
    if kept is None or kept == current:
        return
    try:
        record = json.loads(kept)
        sources = [(f"{store}:{name}", text) for name, text in record["files"]]
    except (ValueError, KeyError, TypeError):
        raise StoreError(f"{store}: the models kept in the store are damaged") from None
    findings = find_breaking_changes(schema_of(sources), schema)
    if findings:
        listed = "\n".join(f"  {format_plain(f)}" for f in findings)
        raise BreakingModelChange(
            f"the models changed in ways that break what the store holds "
            f"({len(findings)} finding{'s' if len(findings) != 1 else ''}):\n{listed}\n"
            "migrate the data, then start once with --migrated to accept the new models"
        )
