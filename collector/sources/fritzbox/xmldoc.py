"""The one hardened XML loader for everything a FRITZ!Box answers (device lists,
statistics, SessionInfo, TR-064 descriptions and SOAP answers).

Entities are never expanded and nothing is fetched: a document type declaration (where
entity definitions live) is refused outright, before and after parsing, so
entity-expansion bombs and external entities end as a ``ParseError`` naming the request.
"""

from __future__ import annotations

from typing import Any

from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from collector.errors import ParseError

#: A device list of a few hundred devices is well under 1 MiB; anything this large is not
#: an answer of a FRITZ!Box.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
#: A quick refusal before parsing; the check after parsing catches any other encoding.
_DTD_WORDS = ("<!DOCTYPE", "<!ENTITY")
_DTD_MARKERS = tuple(word.encode("utf-8") for word in _DTD_WORDS)
#: The UTF-16 and UTF-32 forms contain NUL bytes, so they are only looked for in a document
#: that has one (each search is a pass over the whole document). A UTF-32 word is not found
#: by its UTF-16 form (three NULs between letters, not one), so both are searched.
_DTD_MARKERS_UTF16 = tuple(
    word.encode(enc)
    for word in _DTD_WORDS
    for enc in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
)
#: One parser for all answers; lxml parser objects must not be used by two threads at once,
#: and every answer is parsed on the event loop's thread.
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    huge_tree=False,
    load_dtd=False,
    remove_comments=True,
    remove_pis=True,
)


def parse_xml(body: bytes, what: str) -> Any:
    """The root element of ``body``; ``what`` names the answer in errors."""
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ParseError(f"document too large ({len(body)} bytes)", part=what)
    if any(marker in body for marker in _DTD_MARKERS) or (
        b"\0" in body and any(marker in body for marker in _DTD_MARKERS_UTF16)
    ):
        raise ParseError("document type declarations are not accepted", part=what)
    try:
        root = etree.fromstring(body, _PARSER)
    except (etree.LxmlError, ValueError, TypeError) as err:
        raise ParseError(f"malformed XML (not well-formed XML: {str(err)[:200]})",
                         part=what) from err
    if root is None:
        raise ParseError("empty document", part=what)
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise ParseError("document type declarations are not accepted", part=what)
    return root
