"""ETag / 304 and gzip on the JSON routes."""

from __future__ import annotations

from denhaag_twin import SITE, Twin

from api.etag import entity_tag, matches


def test_etag_and_304(twin: Twin) -> None:
    path = f"/sites/{SITE}/tree"
    first = twin.client.get(path, headers=twin.headers("display"))
    assert first.status_code == 200
    tag = first.headers["ETag"]
    assert tag == entity_tag(first.content)
    again = twin.client.get(path, headers={**twin.headers("display"), "If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == tag
    other = twin.client.get(path, headers={**twin.headers("display"), "If-None-Match": '"x"'})
    assert other.status_code == 200
    assert other.content == first.content


def test_errors_carry_no_etag_and_are_never_304(twin: Twin) -> None:
    response = twin.client.get("/sites/nowhere", headers={"If-None-Match": "*"})
    assert response.status_code == 401
    assert "ETag" not in response.headers


def test_a_pilot_gets_its_own_tag(twin: Twin) -> None:
    path = f"/sites/{SITE}"
    admin = twin.client.get(path, headers=twin.headers("admin"))
    pilot = twin.client.get(
        path, headers={**twin.headers("pilot"), "If-None-Match": admin.headers["ETag"]}
    )
    assert pilot.status_code == 200  # another representation: the admin's tag does not match
    assert pilot.headers["ETag"] != admin.headers["ETag"]


def test_large_json_is_gzipped_with_the_same_tag(twin: Twin) -> None:
    path = f"/sites/{SITE}/objects?prefix=9"
    plain = twin.client.get(path, headers={**twin.headers("admin"), "Accept-Encoding": "identity"})
    zipped = twin.client.get(path, headers={**twin.headers("admin"), "Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["ETag"] == plain.headers["ETag"]
    assert len(plain.content) > 1024
    assert int(zipped.headers["Content-Length"]) < len(plain.content) / 4
    # httpx decodes gzip: the decoded body equals the plain one
    assert zipped.content == plain.content


def test_if_none_match_lists_and_weak_tags() -> None:
    assert matches('"a", W/"b"', '"b"')
    assert matches("*", '"z"')
    assert not matches('"a"', '"b"')
