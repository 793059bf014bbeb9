"""``xmltodict.unparse`` for what moto serializes, written straight into a list of strings.

moto writes every response of a query or EC2 protocol service (Auto Scaling, EC2, ELB, CloudWatch, SNS,
IAM) as a dictionary that ``xmltodict.unparse`` turns into XML through a SAX ``XMLGenerator``: a method
call per element, attribute and text, and a generic walk that checks every option at every level. That
was a twentieth of the suite's CPU. :func:`unparse` writes the same bytes for the same input: the same
escaping (``xml.sax.saxutils``), the same empty-element rule (``<a/>`` only while nothing was written
inside), the same names refused, values turned into text by xmltodict's own function. What it does not
model (an output stream, pretty printing, namespaces, a preprocessor, comments, iterables other than
lists and tuples) goes to xmltodict itself, from the start. tests/localaws/test_speedups.py compares
both on every response of a deployment, its rollback and a failed one.
"""

from __future__ import annotations

from typing import Any, Callable
from xml.sax.saxutils import escape, quoteattr

from xmltodict import _convert_value_to_string, _validate_name

_TEXT, _ATTR = "#text", "@"
_BYTES = (bytes, bytearray, memoryview)


class _Elsewhere(Exception):
    """The input uses what :func:`unparse` leaves to xmltodict."""


#: the (name, kind) pairs xmltodict's check let through: moto's few hundred element and attribute names
_VALID: set[tuple[str, str]] = set()


class _Writer:
    def __init__(self, short_empty_elements: bool, encoding: str) -> None:
        self.parts: list[str] = []
        self.short = short_empty_elements
        self.pending = False  # a start tag written without its ">" (short_empty_elements)
        self.encoding = encoding

    def text(self, value: Any) -> str:
        """A value as xmltodict writes it (booleans as true/false, bytes decoded)."""
        return str(_convert_value_to_string(value, encoding=self.encoding))

    def name(self, value: Any, kind: str) -> None:
        if (value, kind) not in _VALID:
            _validate_name(value, kind)  # xmltodict's own check and message
            _VALID.add((value, kind))

    def emit(self, key: Any, value: Any, top: bool, full_document: bool) -> None:
        if not isinstance(key, str) or key == "#comment":
            raise _Elsewhere
        self.name(key, "element")
        if not hasattr(value, "__iter__") or isinstance(value, (str, dict, *_BYTES)):
            value = [value]
        elif not isinstance(value, (list, tuple)):
            raise _Elsewhere
        for index, item in enumerate(value):
            if full_document and top and index > 0:
                raise ValueError("document with multiple roots")
            self.element(key, item, full_document)

    def element(self, key: str, item: Any, full_document: bool) -> None:
        if item is None:
            item = {}
        elif not isinstance(item, (dict, str)):
            item = self.text(item)
        cdata: str | None = None
        attrs: list[tuple[str, str]] = []
        children: list[tuple[Any, Any]] = []
        if isinstance(item, str):
            cdata = item
        else:
            for inner_key, inner in item.items():
                if inner_key == _TEXT:
                    cdata = None if inner is None else self.text(inner)
                elif isinstance(inner_key, str) and inner_key.startswith(_ATTR):
                    if inner_key == "@xmlns" and isinstance(inner, dict):
                        raise _Elsewhere
                    attr = inner_key[len(_ATTR) :]
                    self.name(attr, "attribute")
                    attrs.append((attr, "" if inner is None else self.text(inner)))
                elif not (isinstance(inner, list) and not inner):  # an empty list writes nothing
                    children.append((inner_key, inner))
        self.open(key, attrs)
        for child_key, child in children:
            self.emit(child_key, child, False, full_document)
        if cdata:  # characters(""): nothing written, and the element may still close as <a/>
            self.finish_start()
            self.parts.append(escape(cdata))
        if self.pending:
            self.parts.append("/>")
            self.pending = False
        else:
            self.parts.append(f"</{key}>")

    def open(self, key: str, attrs: list[tuple[str, str]]) -> None:
        self.finish_start()
        self.parts.append("<" + key)
        for name, value in dict(attrs).items():  # a later attribute of the same name wins, as in a dict
            self.parts.append(f" {name}={quoteattr(value)}")
        if self.short:
            self.pending = True
        else:
            self.parts.append(">")

    def finish_start(self) -> None:
        if self.pending:
            self.parts.append(">")
            self.pending = False


def fast_unparse(original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` (xmltodict's ``unparse``), answered by :class:`_Writer` where it can be."""

    def unparse(
        input_dict: Any,
        output: Any = None,
        encoding: str = "utf-8",
        full_document: bool = True,
        short_empty_elements: bool = False,
        comment_key: str = "#comment",
        **kwargs: Any,
    ) -> Any:
        plain = output is None and comment_key == "#comment" and isinstance(input_dict, dict)
        if plain and not kwargs.get("pretty") and set(kwargs) <= {"pretty"}:
            try:
                return _unparse(input_dict, encoding, full_document, short_empty_elements)
            except _Elsewhere:
                pass
        return original(
            input_dict,
            output=output,
            encoding=encoding,
            full_document=full_document,
            short_empty_elements=short_empty_elements,
            comment_key=comment_key,
            **kwargs,
        )

    unparse.__wrapped__ = original  # type: ignore[attr-defined]
    return unparse


def _unparse(input_dict: dict, encoding: str, full_document: bool, short: bool) -> str:
    writer = _Writer(short, encoding)
    if full_document:
        writer.parts.append(f'<?xml version="1.0" encoding="{encoding}"?>\n')
    seen_root = False
    for key, value in input_dict.items():
        if key == "#comment":
            raise _Elsewhere
        if full_document and seen_root:
            raise ValueError("Document must have exactly one root.")
        writer.emit(key, value, True, full_document)
        seen_root = True
    if full_document and not seen_root:
        raise ValueError("Document must have exactly one root.")
    return "".join(writer.parts)
