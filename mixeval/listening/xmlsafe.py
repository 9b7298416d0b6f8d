"""Safe XML parsing for untrusted files (WAET results): no DTDs, no entities, no network.

The parser is the standard library's expat, driven directly so that any ``<!DOCTYPE``, entity
declaration or external entity reference aborts parsing. Without a DTD no entity can be defined,
so entity-expansion attacks ("billion laughs") and external entities (file or network access) are
impossible; undeclared entity references are a well-formedness error in expat.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.parsers import expat

from mixeval.errors import MixevalError

__all__ = ["MAX_XML_BYTES", "parse_xml_bytes", "parse_xml_file"]

MAX_XML_BYTES = 64 * 1024 * 1024
"""Largest XML file accepted (64 MiB); a WAET result is typically 10–500 kB."""


class _Forbidden(Exception):
    pass


def parse_xml_bytes(data: bytes, source: str = "<bytes>") -> ET.Element:
    """Parse ``data`` into an ElementTree element, refusing DTDs and entity declarations.

    Namespaces are not processed: a prefixed attribute keeps its literal name (``xsi:...``).

    Raises:
        MixevalError: the document is not well-formed, declares a DTD or entities, or is too large.
    """
    if len(data) > MAX_XML_BYTES:
        raise MixevalError(f"{source}: XML file too large ({len(data)} bytes, limit {MAX_XML_BYTES})")
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True

    def forbid_doctype(*_args):
        raise _Forbidden("a DOCTYPE declaration")

    def forbid_entity(*_args):
        raise _Forbidden("an entity declaration")

    def forbid_external(*_args):
        raise _Forbidden("an external entity reference")

    parser.StartDoctypeDeclHandler = forbid_doctype
    parser.EntityDeclHandler = forbid_entity
    parser.UnparsedEntityDeclHandler = forbid_entity
    parser.ExternalEntityRefHandler = forbid_external
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
        root = builder.close()
    except _Forbidden as err:
        raise MixevalError(f"{source}: refusing XML with {err} (DTDs and entities are not allowed)") from None
    except expat.ExpatError as err:
        raise MixevalError(f"{source}: not well-formed XML ({expat.ErrorString(err.code)}, line {err.lineno})") from None
    except AssertionError:  # TreeBuilder.close on an empty document
        raise MixevalError(f"{source}: XML document has no root element") from None
    return root


def parse_xml_file(path: str | os.PathLike) -> ET.Element:
    """Read and parse an XML file with :func:`parse_xml_bytes`.

    Raises:
        MixevalError: unreadable, empty, too large, malformed, or declaring a DTD/entities.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_XML_BYTES:
            raise MixevalError(f"{path}: XML file too large ({size} bytes, limit {MAX_XML_BYTES})")
        data = path.read_bytes()
    except OSError as err:
        raise MixevalError(f"{path}: cannot read file ({err.strerror})") from None
    if not data.strip():
        raise MixevalError(f"{path}: file is empty")
    return parse_xml_bytes(data, str(path))
