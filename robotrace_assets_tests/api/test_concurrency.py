"""Many clients at once on SQLite and PostgreSQL: no 500, one consistent outcome per episode."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from robotrace_assets_tests.api.conftest import Service


def test_concurrent_finalizes_of_one_episode_agree(service: Service, tenant_key) -> None:
    client = service.client(tenant_key[1])
    body = client.post("/api/ingest/episode", json={"request_uploads": ["video"]}).json()
    url = body["upload_urls"][0]["url"]
    assert httpx.put(url, content=b"v" * 64, headers={"Content-Type": "video/mp4"}).is_success
    path = f"/api/ingest/episode/{body['episode_id']}/finalize"

    def finalize(index: int) -> httpx.Response:
        with service.client(tenant_key[1]) as own:
            return own.post(path, json={"bytes_total": 64, "metadata": {f"k{index}": index}})

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(finalize, range(12)))
    assert {a.status_code for a in answers} == {200}
    assert {a.json()["status"] for a in answers} == {"ready"}
    assert {a.json()["verification"]["state"] for a in answers} == {"pending"}
    assert len({a.json()["verification"]["segment_id"] for a in answers}) == 1
    view = client.get(f"/api/episodes/{body['episode_id']}").json()
    assert view["verification"]["state"] == "pending"
    assert view["metadata"] == {f"k{i}": i for i in range(12)}  # no merge lost


def test_concurrent_opens_from_many_tenants(service: Service) -> None:
    tokens = [service.key(service.tenant(f"t{i}")) for i in range(4)]

    def open_and_finalize(index: int) -> tuple[int, int]:
        with service.client(tokens[index % 4]) as own:
            opened = own.post("/api/ingest/episode", json={"request_uploads": []})
            done = own.post(f"/api/ingest/episode/{opened.json()['episode_id']}/finalize")
            return opened.status_code, done.status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert set(pool.map(open_and_finalize, range(48))) == {(201, 200)}
