"""One declaration per resource document.

A resource's wire shape is declared once, as its response model (``GoalOut``, ``StepOut``,
...). ``Document`` turns that declaration into the renderers everything else uses: the single
GET, a page, a create's answer, a sync upsert, an export entry and a webhook's ``data`` all
call ``render``; the goals page rendered by the database builds its SQL from ``fields`` and
``kind``. Adding a field to the model's declaration is the one change the renderers need.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any

from pydantic import BaseModel

Getter = Callable[[Any], Any]


def _plain_type(annotation: Any) -> Any:
    """``X | None`` -> ``X``; other annotations as they are."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


class Document:
    """The renderers of one resource, derived from its declaration (a response model).

    ``computed`` gives the fields that are not a column of the same name (a goal's
    ``progress``), as functions of the row; every other field is read from the row (a Core
    row, an ORM object or a namespace) by its name."""

    def __init__(self, declaration: type[BaseModel], computed: Mapping[str, Getter] = {}) -> None:
        self.declaration = declaration
        self.fields: tuple[str, ...] = tuple(declaration.model_fields)
        unknown = set(computed) - set(self.fields)
        if unknown:
            raise ValueError(f"{declaration.__name__} declares no {sorted(unknown)}")
        self.columns: tuple[str, ...] = tuple(f for f in self.fields if f not in computed)
        self._getters: tuple[tuple[str, Getter], ...] = tuple(
            (name, computed.get(name) or attrgetter(name)) for name in self.fields
        )

    def render(self, row: Any) -> dict[str, Any]:
        """The document of one row, in the declaration's field order."""
        return {name: get(row) for name, get in self._getters}

    def kind(self, name: str) -> str:
        """What a field holds, for renderers outside Python (the database's JSON):
        ``uuid``, ``datetime``, ``date``, ``boolean``, ``object`` (nested JSON) or ``scalar``."""
        annotation = _plain_type(self.declaration.model_fields[name].annotation)
        if annotation is uuid.UUID:
            return "uuid"
        if annotation is dt.datetime:
            return "datetime"
        if annotation is dt.date:
            return "date"
        if annotation is bool:
            return "boolean"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return "object"
        return "scalar"
