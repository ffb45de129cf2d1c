"""CAP XML of derived alerts through the API: an all-clear or a correction says the hazard is
over (its own instruction, urgency Past, severity Minor), an update restates the original."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from flask.testing import FlaskClient
from webtools import ALERT, People, approved_alert

from broadcast.cap import CAP_NS

NS = {"cap": CAP_NS}
ORIGINAL = {**ALERT, "severity": "Extreme", "instruction": "Chằng chống nhà cửa, ở trong nhà."}


def _derive(client: FlaskClient, people: People, aid: int, kind: str) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/alerts/{aid}/derive", json={"kind": kind}, headers=people.auth("drafter")
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _cap(client: FlaskClient, people: People, aid: int) -> dict[str, str | None]:
    response = client.get(f"/api/v1/alerts/{aid}/cap.xml", headers=people.auth("auditor"))
    assert response.status_code == 200
    root = ET.fromstring(response.data)  # noqa: S314 (Loa's own output, parsed to check it)

    def text(path: str) -> str | None:
        element = root.find(path, NS)
        return None if element is None else element.text

    return {
        name: text(path)
        for name, path in {
            "msgType": "cap:msgType",
            "references": "cap:references",
            "instruction": "cap:info/cap:instruction",
            "urgency": "cap:info/cap:urgency",
            "severity": "cap:info/cap:severity",
            "certainty": "cap:info/cap:certainty",
        }.items()
    }


def test_all_clear_cap_has_its_own_instruction_and_assessment_and_the_drafter_edits_them(
    client: FlaskClient, people: People
) -> None:
    original = approved_alert(client, people, **ORIGINAL)
    clear = _derive(client, people, original["id"], "all_clear")
    cap = _cap(client, people, clear["id"])
    assert cap["msgType"] == "Cancel"
    assert original["identifier"] in (cap["references"] or "")
    assert cap["instruction"] == "Trở lại sinh hoạt bình thường."
    assert (cap["urgency"], cap["severity"], cap["certainty"]) == ("Past", "Minor", "Observed")
    assert "Chằng chống" not in clear["body"] + clear["instruction"]

    edited = {
        **ORIGINAL,
        "title": clear["title"],
        "body": clear["body"],
        "instruction": "Trở về nhà; tránh khu vực sạt lở.",
        "urgency": "Expected",
        "severity": "Moderate",
        "certainty": "Likely",
    }
    response = client.put(
        f"/api/v1/alerts/{clear['id']}", json=edited, headers=people.auth("drafter")
    )
    assert response.status_code == 200, response.get_json()
    cap = _cap(client, people, clear["id"])
    assert cap["instruction"] == "Trở về nhà; tránh khu vực sạt lở."
    assert (cap["urgency"], cap["severity"], cap["certainty"]) == ("Expected", "Moderate", "Likely")
    assert cap["msgType"] == "Cancel"


def test_correction_and_update_cap_fields(client: FlaskClient, people: People) -> None:
    original = approved_alert(client, people, **ORIGINAL)
    correction = _cap(client, people, _derive(client, people, original["id"], "correction")["id"])
    assert correction["msgType"] == "Update"
    assert correction["instruction"] == "Không cần làm theo tin trước."
    assert (correction["urgency"], correction["severity"], correction["certainty"]) == (
        "Past",
        "Minor",
        "Unlikely",
    )
    update = _cap(client, people, _derive(client, people, original["id"], "update")["id"])
    assert update["msgType"] == "Update"
    assert update["instruction"] == ORIGINAL["instruction"]
    assert (update["urgency"], update["severity"], update["certainty"]) == (
        "Immediate",
        "Extreme",
        "Likely",
    )
