"""PNG snapshots over HTTP: a building, the site, coloured by a layer; pilots in scope."""

from __future__ import annotations

import io

import numpy as np
from denhaag_twin import SITE, Twin
from PIL import Image


def _image(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


def test_building_snapshot_and_layer_colouring(twin: Twin) -> None:
    code = twin.building.code
    plain = twin.client.get(
        f"/sites/{SITE}/image.png?code={code}&width=320&height=200", headers=twin.headers("display")
    )
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "image/png"
    pixels = _image(plain.content)
    assert pixels.shape == (200, 320, 3)
    assert pixels.std() > 5  # not a blank frame
    twin.client.put(
        f"/sites/{SITE}/layers/img-test",
        json={"values": {code: 1.0, twin.other_building.code: 0.0}, "unit": "m"},
        headers=twin.headers("planner"),
    )
    coloured = twin.client.get(
        f"/sites/{SITE}/image.png?code={code}&layer=img-test&width=320&height=200",
        headers=twin.headers("display"),
    )
    assert coloured.status_code == 200
    assert not np.array_equal(_image(coloured.content), pixels)


def test_pilot_snapshots_stay_in_scope_and_bad_requests_are_refused(twin: Twin) -> None:
    own = twin.client.get(
        f"/sites/{SITE}/image.png?width=160&height=120", headers=twin.headers("pilot")
    )
    assert own.status_code == 200
    other = twin.client.get(
        f"/sites/{SITE}/image.png?code={twin.other_building.code}", headers=twin.headers("pilot")
    )
    assert other.status_code == 404
    for query in ("width=10", "height=99999", "code=../x", "layer=a%20b"):
        response = twin.client.get(
            f"/sites/{SITE}/image.png?{query}", headers=twin.headers("admin")
        )
        assert response.status_code == 422, query
    missing = twin.client.get(f"/sites/{SITE}/image.png?layer=nope", headers=twin.headers("admin"))
    assert missing.status_code == 404
