"""Message templates: files in ``app/mail/templates/``.

``<name>.txt`` holds the subject on its first line (``Subject: ...``), a blank line, then the
text/plain body; an optional ``<name>.html`` holds an HTML body. Both are ``string.Template``
text: ``$name`` or ``${name}`` is replaced by the context's value (in the HTML escaped), and a
name missing from the context is an error when the message is queued, not a blank in it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).resolve().parent / "templates"
_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


class UnknownTemplate(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str | None


@dataclass(frozen=True, slots=True)
class _Source:
    subject: Template
    text: Template
    html: Template | None


@lru_cache
def _source(name: str) -> _Source:
    if not name or not set(name) <= _NAME_CHARACTERS:
        raise UnknownTemplate(f"not a template name: {name!r}")
    path = TEMPLATES / f"{name}.txt"
    if not path.is_file():
        raise UnknownTemplate(f"no template {name!r}")
    head, _, body = path.read_text(encoding="utf-8").partition("\n\n")
    if not head.startswith("Subject: ") or "\n" in head:
        raise UnknownTemplate(f"template {name!r} does not start with one 'Subject:' line")
    html_path = TEMPLATES / f"{name}.html"
    return _Source(
        Template(head.removeprefix("Subject: ")),
        Template(body),
        Template(html_path.read_text(encoding="utf-8")) if html_path.is_file() else None,
    )


def render(name: str, context: Mapping[str, object]) -> Rendered:
    source = _source(name)
    values = {key: str(value) for key, value in context.items()}
    # A header never spans lines, whatever a value holds (a display name, say).
    subject = " ".join(source.subject.substitute(values).split())
    text = source.text.substitute(values)
    markup = None
    if source.html is not None:
        markup = source.html.substitute({k: html.escape(v) for k, v in values.items()})
    return Rendered(subject, text, markup)
