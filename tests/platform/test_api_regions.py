"""The divisions dataset over HTTP: what cascading region selects load, level by level."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from formloom.platform.app import build_app
from formloom.platform.settings import Settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings, run_worker=False)) as test_client:
        yield test_client


def test_the_levels_cascade_from_the_provinces_to_the_districts(client: TestClient) -> None:
    provinces = client.get("/api/regions/0/children")
    assert provinces.status_code == 200
    guangdong = next(d for d in provinces.json() if d["name"] == "广东省")
    assert guangdong == {"code": "440000", "name": "广东省", "level": "province"}

    cities = client.get(f"/api/regions/{guangdong['code']}/children").json()
    shenzhen = next(d for d in cities if d["name"] == "深圳市")
    districts = client.get(f"/api/regions/{shenzhen['code']}/children").json()

    assert {"code": "440305", "name": "南山区", "level": "district"} in districts
    assert all(d["level"] == "city" for d in cities)


def test_one_division_comes_with_its_path(client: TestClient) -> None:
    answer = client.get("/api/regions/440305")

    assert answer.status_code == 200
    assert [d["name"] for d in answer.json()["path"]] == ["广东省", "深圳市", "南山区"]


@pytest.mark.parametrize("code", ["999999", "abc", "<script>"])
def test_an_unknown_code_is_a_404_that_names_it(client: TestClient, code: str) -> None:
    answer = client.get(f"/api/regions/{code}/children", headers={"Accept-Language": "zh"})

    assert answer.status_code == 404
    assert code in answer.json()["detail"] and "行政区划" in answer.json()["detail"]
