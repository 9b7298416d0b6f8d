"""Test helper: write synthetic WAET result files (the format of WAET_FORMAT.md §3.2) with planted ratings."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np


def write_waet_result(
    path: Path,
    test_xml: Path,
    ratings: dict[str, float],
    *,
    key: str,
    rng: np.random.Generator,
    state: str = "complete",
    page_states: dict[str, str] | None = None,
    code: str = "P01",
    experience: float = 5.0,
    axis: str = "similarity",
) -> Path:
    """One session: ``ratings`` maps rated element id -> value in [0, 1]; outside references get no value."""
    spec = ET.parse(test_xml).getroot()
    root = ET.Element("waetresult", {"key": key, "state": state})
    embedded = copy.deepcopy(spec)
    embedded.set("file-name", f"tests/{test_xml.name}")
    root.append(embedded)
    ET.SubElement(ET.SubElement(root, "datetime"), "date", {"year": "2026", "month": "11", "day": "26"})
    pre = ET.SubElement(root, "survey", {"location": "pre", "state": "complete"})
    r = ET.SubElement(pre, "surveyresult", {"ref": "participant", "type": "question", "duration": "2.1"})
    ET.SubElement(r, "response").text = code
    r = ET.SubElement(pre, "surveyresult", {"ref": "experience", "type": "number", "duration": "1.5"})
    ET.SubElement(r, "response").text = str(experience)
    pages = spec.findall("page")
    for pi, idx in enumerate(rng.permutation(len(pages))):
        page = pages[int(idx)]
        pid = page.get("id")
        pstate = (page_states or {}).get(pid, "complete" if state == "complete" else "empty")
        pr = ET.SubElement(root, "page", {"ref": pid, "presentedId": str(pi), "state": pstate})
        ET.SubElement(pr, "survey", {"location": "pre", "state": "empty"})
        ET.SubElement(pr, "survey", {"location": "post", "state": "empty"})
        ET.SubElement(ET.SubElement(pr, "metric"), "metricresult", {"id": "testTime"}).text = "12.5"
        elements = page.findall("audioelement")
        refs = [e for e in elements if e.get("type") == "outside-reference"]
        rated = [e for e in elements if e.get("type") != "outside-reference"]
        order = refs + [rated[int(i)] for i in rng.permutation(len(rated))]
        for n, el in enumerate(order):
            ae = ET.SubElement(pr, "audioelement", {
                "ref": el.get("id"), "type": el.get("type", "normal"), "url": el.get("url"),
                "fqurl": "http://127.0.0.1:8000/" + el.get("url"), "gain": "0", "playGain": "0",
                "presentedId": el.get("label") or str(n - len(refs) + 1),
            })
            metric = ET.SubElement(ae, "metric")
            ET.SubElement(metric, "metricresult", {"name": "enableElementTimer"}).text = "1.25"
            ET.SubElement(metric, "metricresult", {"name": "elementFlagMoved"}).text = "true"
            ET.SubElement(ae, "file", {"sampleRate": "44100", "channels": "2", "sampleCount": "88200", "duration": "2"})
            if el.get("type") != "outside-reference" and pstate == "complete" and el.get("id") in ratings:
                ET.SubElement(ae, "value", {"interface-name": axis}).text = f"{ratings[el.get('id')]:.2f}"
                c = ET.SubElement(ae, "comment")
                ET.SubElement(c, "question").text = f"Comment on mix {n}"
                ET.SubElement(c, "response")
        cm = ET.SubElement(pr, "comment", {"id": f"{pid}-comment", "type": "question"})
        ET.SubElement(cm, "question").text = "What differences did you notice?"
        ET.SubElement(cm, "response").text = "fine"
    path.write_bytes(ET.tostring(root, encoding="utf-8"))
    return path
