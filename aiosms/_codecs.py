"""JSON and XML bodies to and from plain dicts; no models, no HTTP.

Decoding is strict about shape and lenient about content: a body must be one JSON
object, or one XML document (its root may have any name: the gateways are not
consistent), and anything else raises ``WireFormatError``. Which fields are read,
and at which paths, is the adapters' business.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Iterable
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict

__all__ = [
    "WireFormatError",
    "dumps_json",
    "dumps_xml",
    "encode_json_string",
    "loads_json",
    "loads_xml",
]


class WireFormatError(Exception):
    """The body is not the JSON object or XML document a reply must be."""


_json_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_json_decoder = json.JSONDecoder()

#: A str as a JSON string literal, quotes included, non-ASCII kept as is: the same
#: escaping ``dumps_json`` applies to every string in a payload (C-accelerated).
encode_json_string: Callable[[str], str] = json.encoder.encode_basestring


def dumps_json(payload: dict[str, Any]) -> bytes:
    return _json_encoder.encode(payload).encode()


def loads_json(body: bytes) -> dict[str, Any]:
    try:
        value = _json_decoder.decode(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WireFormatError("the reply is not valid JSON") from None
    if not isinstance(value, dict):
        raise WireFormatError("the reply is not a JSON object")
    return value


def dumps_xml(root: str, payload: dict[str, Any]) -> bytes:
    document = xmltodict.unparse({root: payload}, encoding="utf-8").encode()
    # A parser turns a raw CR into LF; a character reference keeps it (no CR comes
    # from the markup itself, only from values).
    return document.replace(b"\r", b"&#13;")


def _keep_text(path: object, key: str, value: Any) -> tuple[str, Any] | None:
    if isinstance(value, str) and not value.strip():
        # Indentation between elements is not data; an element holding only
        # white space is empty.
        return None if key == "#text" else (key, None)
    return key, value


def loads_xml(body: bytes, *, lists: Iterable[str] = ()) -> dict[str, Any]:
    """Parse an XML document and return what is under its root, whatever its name.

    Elements named in ``lists`` always come back as lists, so one ``message`` and
    many parse alike. Attributes (such as the gateways' ``xmlns:i``) are dropped.
    """
    try:
        document = xmltodict.parse(
            body,
            force_list=tuple(lists),
            xml_attribs=False,
            # Texts keep their own leading and trailing spaces.
            strip_whitespace=False,
            postprocessor=_keep_text,  # type: ignore[arg-type]  # None drops the key
        )
    except (ExpatError, ValueError, TypeError, LookupError, RecursionError):
        raise WireFormatError("the reply is not well-formed XML") from None
    if not isinstance(document, dict) or len(document) != 1:
        raise WireFormatError("the reply has no single XML root")
    (content,) = document.values()
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise WireFormatError("the XML root holds no elements")
    return content
