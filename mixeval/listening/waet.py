"""WAET test XML: build a MUSHRA similarity test, check its structure, validate with WAET's XSD.

The document follows the Web Audio Evaluation Tool's test format (``<waet>`` root, strict element
order ``setup`` then ``page``\\ s; see ``shared/reference/waet/WAET_FORMAT.md``): per page two
labelled ``outside-reference`` elements ("Reference mix", "Input track") and unlabelled rated
stimuli, ``randomiseOrder``/``loop``/``synchronous``, a comment question; before the first page a
survey with instructions, consent, participant code and mixing experience (a user gesture first,
for browser autoplay policies). WAET's own XSD is GPL and is not shipped: :func:`validate_xsd`
takes a WAET checkout; :func:`check_test_xml` is this project's own structural check.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from mixeval.errors import MixevalError
from mixeval.listening.xmlsafe import parse_xml_bytes, parse_xml_file

__all__ = [
    "INTERFACES",
    "WaetElement",
    "WaetPage",
    "WaetSetup",
    "assert_valid_test",
    "build_test_xml",
    "check_test_xml",
    "validate_xsd",
]

INTERFACES = ("APE", "MUSHRA", "horizontal", "discrete", "AB", "ABX", "timeline", "ordinal")
ELEMENT_TYPES = ("normal", "reference", "anchor", "outside-reference")
_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_BOOL_ATTRS = {"randomiseOrder", "loop", "synchronous", "restrictMovement", "playOne", "alwaysInclude", "mandatory", "showBackButton"}
_SETUP_ORDER = [("exitText", 0, 1), ("calibration", 0, 1), ("survey", 0, 2), ("metric", 1, 1), ("interface", 1, 1)]
_PAGE_ORDER = [
    ("title", 0, 1), ("commentboxprefix", 0, 1), ("interface", 1, None), ("audioelement", 1, None),
    ("commentquestions", 0, 1), ("survey", 0, 2),
]
_METRICS = (
    "testTimer", "elementTimer", "elementInitialPosition", "elementTracker", "elementFlagListenedTo",
    "elementFlagMoved", "elementListenTracker",
)


@dataclass(frozen=True)
class WaetElement:
    """One ``<audioelement>``: ``url`` is relative to the page's ``hostURL``."""

    id: str
    url: str
    type: str = "normal"
    label: str | None = None


@dataclass(frozen=True)
class WaetPage:
    """One test page (question)."""

    id: str
    title: str
    elements: tuple[WaetElement, ...]
    comment: str = "What differences did you notice between the mixes?"


@dataclass(frozen=True)
class WaetSetup:
    """Test-wide settings of the generated document."""

    host_url: str
    axis: str = "similarity"
    question: str = "How similar is each mix to the reference mix?"
    scale: tuple[tuple[int, str], ...] = ((0, "Not similar"), (50, "Moderately similar"), (100, "Identical"))
    instructions: str = "Rate each mix for its similarity to the reference mix."
    exit_text: str = "Thank you! Your answers have been saved. You can close this tab."
    project_return: str = "save.php"
    comment_prefix: str = "Comment on mix"
    consent: str = "I agree to take part and to my anonymous ratings being used for research."
    experience_question: str = "How many years of experience in mixing music do you have?"
    metrics: tuple[str, ...] = field(default=_METRICS)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = text
    return el


def build_test_xml(setup: WaetSetup, pages: list[WaetPage] | tuple[WaetPage, ...]) -> bytes:
    """Serialise a MUSHRA test document (UTF-8 bytes with XML declaration).

    Every page gets ``hostURL=setup.host_url`` (which must end in ``/``), ``randomiseOrder``,
    ``loop`` and ``synchronous`` true, numeric labels, one interface with the scale, and a
    comment question ``<page id>-comment``. No ``setup@sampleRate`` is written.

    Raises:
        MixevalError: ``host_url`` without trailing slash, or no pages.
    """
    if not setup.host_url.endswith("/"):
        raise MixevalError(f"hostURL {setup.host_url!r} must end with '/' (WAET concatenates it with each url)")
    if not pages:
        raise MixevalError("a WAET test needs at least one page")
    root = ET.Element("waet", {"xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
                               "xsi:noNamespaceSchemaLocation": "test-schema.xsd"})
    s = _sub(root, "setup", interface="MUSHRA", projectReturn=setup.project_return, randomiseOrder="true")
    _sub(s, "exitText", setup.exit_text)
    before = _sub(s, "survey", location="before")
    _sub(_sub(before, "surveystatement", id="instructions"), "statement", setup.instructions)
    consent = _sub(before, "surveyradio", id="consent", mandatory="true")
    _sub(consent, "statement", setup.consent)
    _sub(consent, "option", "I agree", name="agree")
    _sub(_sub(before, "surveyquestion", id="participant", mandatory="true"), "statement", "Please enter your participant code.")
    _sub(_sub(before, "surveynumber", id="experience", min="0", max="80", mandatory="true"), "statement", setup.experience_question)
    after = _sub(s, "survey", location="after")
    _sub(_sub(after, "surveyquestion", id="feedback", boxsize="large"), "statement", "Any comments on the test?")
    metric = _sub(s, "metric")
    for name in setup.metrics:
        _sub(metric, "metricenable", name)
    iface = _sub(s, "interface")
    _sub(iface, "interfaceoption", type="check", name="fragmentPlayed")
    _sub(iface, "interfaceoption", type="check", name="fragmentMoved")
    _sub(iface, "interfaceoption", type="show", name="page-count")
    for page in pages:
        p = _sub(root, "page", id=page.id, hostURL=setup.host_url, randomiseOrder="true", loop="true",
                 synchronous="true", label="number")
        _sub(p, "title", page.title)
        _sub(p, "commentboxprefix", setup.comment_prefix)
        pi = _sub(p, "interface", name=setup.axis)
        _sub(pi, "title", setup.question)
        scales = _sub(pi, "scales")
        for pos, text in setup.scale:
            _sub(scales, "scalelabel", text, position=str(int(pos)))
        for el in page.elements:
            _sub(p, "audioelement", id=el.id, url=el.url, type=el.type, label=el.label)
        cq = _sub(p, "commentquestions")
        _sub(_sub(cq, "commentquestion", id=f"{page.id}-comment"), "statement", page.comment)
    ET.indent(root, space="  ")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"


def _check_order(el: ET.Element, order, where: str, problems: list[str]) -> None:
    tags = [c.tag for c in el]
    i = 0
    for name, lo, hi in order:
        n = 0
        while i < len(tags) and tags[i] == name:
            i += 1
            n += 1
        if n < lo:
            problems.append(f"{where}: needs at least {lo} <{name}> in the expected place")
        if hi is not None and n > hi:
            problems.append(f"{where}: at most {hi} <{name}> allowed, found {n}")
    if i < len(tags):
        expected = ", ".join(n for n, _, _ in order)
        problems.append(f"{where}: unexpected <{tags[i]}> (allowed children in order: {expected})")


def check_test_xml(source: str | os.PathLike | bytes, *, root_dir: str | os.PathLike | None = None) -> list[str]:
    """Structural check of a WAET test document: the constraints of WAET's XSD that matter plus
    the ones it cannot express (``WAET_FORMAT.md`` §1 and §4).

    Checks: ``<waet>`` root with one ``<setup>`` then pages; child order of setup and pages;
    a known, case-exact ``setup@interface``; no ``setup@sampleRate``; integer non-positive
    ``loudness``; booleans; every id an NCName and unique document-wide; ``hostURL`` ending in
    ``/``; every page interface has ``<scales>`` with integer positions 0–100; element types;
    no ``label`` on rated elements; and, with ``root_dir`` (the WAET root that ``test.html`` is in),
    that every ``hostURL + url`` exists and decodes as audio at one sample rate.

    Args:
        source: path to the XML file, or its bytes.
        root_dir: folder against which ``hostURL`` + ``url`` resolve; None skips the media check.

    Returns:
        A list of problems, empty when the document passes.
    """
    root = parse_xml_bytes(source, "<test xml>") if isinstance(source, bytes) else parse_xml_file(source)
    problems: list[str] = []
    if root.tag != "waet":
        return [f"root element is <{root.tag}>, expected <waet>"]
    children = list(root)
    if not children or children[0].tag != "setup":
        problems.append("<waet> must start with <setup>")
    if sum(c.tag == "setup" for c in children) != 1:
        problems.append("<waet> needs exactly one <setup>")
    pages = [c for c in children if c.tag == "page"]
    if not pages:
        problems.append("<waet> has no <page>")
    for c in children:
        if c.tag not in ("setup", "page"):
            problems.append(f"<waet>: unexpected child <{c.tag}>")
    setup = root.find("setup")
    if setup is not None:
        _check_order(setup, _SETUP_ORDER, "<setup>", problems)
        if setup.get("interface") not in INTERFACES:
            problems.append(f"setup@interface {setup.get('interface')!r} is not one of {list(INTERFACES)} (case-sensitive)")
        if setup.get("sampleRate") is not None:
            problems.append("setup@sampleRate is set: WAET stops when the browser's rate differs; leave it out")
    for el in root.iter():
        for attr, value in el.attrib.items():
            if attr in _BOOL_ATTRS and value not in ("true", "false"):
                problems.append(f"<{el.tag}>@{attr}={value!r}: expected 'true' or 'false'")
        loud = el.get("loudness")
        if loud is not None and (not re.fullmatch(r"-?\d+", loud) or int(loud) > 0):
            problems.append(f"<{el.tag}>@loudness={loud!r}: must be an integer <= 0 (LUFS)")
        if el.tag == "survey" and el.get("location") not in ("before", "pre", "after", "post"):
            problems.append(f"<survey>@location={el.get('location')!r}: expected before, pre, after or post")
    seen: dict[str, str] = {}
    for el in root.iter():
        if "id" not in el.attrib:
            continue
        ident = el.get("id")
        if not _NCNAME.match(ident):
            problems.append(f"id {ident!r} on <{el.tag}> is not an NCName (letter or '_' first; no spaces or colons)")
        if ident in seen:
            problems.append(f"id {ident!r} is used twice (<{seen[ident]}> and <{el.tag}>); ids share one document-wide space")
        seen[ident] = el.tag
    media: list[tuple[str, Path]] = []
    for page in pages:
        pid = page.get("id")
        where = f"page {pid!r}"
        if pid is None:
            problems.append("a <page> has no id")
        _check_order(page, _PAGE_ORDER, where, problems)
        host = page.get("hostURL", "")
        if host and not host.endswith("/"):
            problems.append(f"{where}: hostURL {host!r} must end with '/'")
        for iface in page.findall("interface"):
            labels = iface.findall("scales/scalelabel")
            if not labels:
                problems.append(f"{where}: page <interface> without <scales>/<scalelabel> (WAET does not fall back to setup scales)")
            for lab in labels:
                pos = lab.get("position", "")
                if not re.fullmatch(r"\d+", pos) or int(pos) > 100:
                    problems.append(f"{where}: scalelabel position {pos!r} must be an integer 0..100")
        for el in page.findall("audioelement"):
            eid, url, etype = el.get("id"), el.get("url"), el.get("type", "normal")
            if not eid or not url:
                problems.append(f"{where}: <audioelement> needs id and url")
                continue
            if etype not in ELEMENT_TYPES:
                problems.append(f"{where}: element {eid!r} type {etype!r} not in {list(ELEMENT_TYPES)}")
            if etype != "outside-reference" and el.get("label"):
                problems.append(f"{where}: rated element {eid!r} has a label, so it is neither blind nor shuffled")
            if root_dir is not None:
                media.append((f"{where} element {eid!r}", Path(root_dir) / (host + url)))
    rates = {}
    for where, path in media:
        if not path.is_file():
            problems.append(f"{where}: media file {path} not found")
            continue
        try:
            info = sf.info(str(path))
            sf.read(str(path), frames=min(int(info.frames), 4096))
        except Exception as err:  # soundfile raises several types
            problems.append(f"{where}: {path} does not decode ({str(err).splitlines()[0] if str(err) else type(err).__name__})")
            continue
        rates.setdefault(int(info.samplerate), where)
    if len(rates) > 1:
        problems.append(f"media use several sample rates {sorted(rates)}; use one rate for the whole test")
    return problems


def assert_valid_test(source: str | os.PathLike | bytes, *, root_dir: str | os.PathLike | None = None) -> None:
    """Run :func:`check_test_xml` and raise on the first problem (with the count of others)."""
    problems = check_test_xml(source, root_dir=root_dir)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise MixevalError(f"test XML failed the structural check: {problems[0]}{more}")


def validate_xsd(xml_path: str | os.PathLike, waet_dir: str | os.PathLike) -> None:
    """Validate a test XML against ``<waet_dir>/xml/test-schema.xsd`` with lxml (libxml2, as WAET's browser check).

    Raises:
        MixevalError: lxml missing, the schema missing or unreadable, or the document invalid
            (the first libxml2 message, with its line).
    """
    try:
        from lxml import etree
    except ImportError:  # pragma: no cover - lxml is a dev dependency
        raise MixevalError("--waet needs lxml (pip install lxml)") from None
    xsd = Path(waet_dir) / "xml" / "test-schema.xsd"
    if not xsd.is_file():
        raise MixevalError(f"{waet_dir}: not a WAET checkout (no xml/test-schema.xsd)")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        schema = etree.XMLSchema(etree.parse(str(xsd), parser))
    except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as err:
        raise MixevalError(f"{xsd}: cannot load schema ({err})") from None
    try:
        doc = etree.parse(str(xml_path), parser)
    except etree.XMLSyntaxError as err:
        raise MixevalError(f"{xml_path}: not well-formed XML ({err})") from None
    if not schema.validate(doc):
        first = schema.error_log[0]
        n = len(schema.error_log)
        more = f" (and {n - 1} more)" if n > 1 else ""
        raise MixevalError(f"{xml_path}:{first.line}: XSD validation failed: {first.message}{more}")
