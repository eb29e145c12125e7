"""Raw HTTP against the service, field by field and status by status (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from robotrace_assets.api import admin
from robotrace_assets.ingest import keys
from robotrace_assets_tests.api.conftest import Service

AUTH_ERROR = (
    "Missing or invalid API key. Pass it as `Authorization: Bearer rt_…` or `X-RoboTrace-Key`."
)


def open_episode(client: httpx.Client, **body) -> dict:
    response = client.post("/api/ingest/episode", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_defaults_and_signed_urls(service: Service, tenant_key) -> None:
    client = service.client(tenant_key[1])
    before = datetime.now(UTC)
    body = open_episode(client)
    assert uuid.UUID(body["episode_id"]).version == 4
    assert body["status"] == "recording" and body["storage"] == "r2"
    assert [u["kind"] for u in body["upload_urls"]] == ["video", "sensors", "actions"]
    for entry in body["upload_urls"]:
        expires = datetime.fromisoformat(entry["expires_at"].replace("Z", "+00:00"))
        assert timedelta(minutes=29) < expires - before < timedelta(minutes=31)
        assert entry["expires_at"].endswith("Z") and entry["public_url"] is None
        assert "X-Amz-Expires=1800" in entry["url"]
    # No body at all opens a run too; [] is metadata-only.
    assert client.post("/api/ingest/episode").status_code == 201
    assert open_episode(client, request_uploads=[])["upload_urls"] == []
    subset = open_episode(client, request_uploads=["actions", "video"])
    assert [u["kind"] for u in subset["upload_urls"]] == ["actions", "video"]


def test_content_type_is_bound_into_the_signature(service: Service, tenant_key) -> None:
    client = service.client(tenant_key[1])
    urls = {u["kind"]: u["url"] for u in open_episode(client)["upload_urls"]}
    assert (
        httpx.put(urls["video"], content=b"v", headers={"Content-Type": "text/plain"}).status_code
        == 403
    )
    assert (
        httpx.put(urls["video"], content=b"v", headers={"Content-Type": "video/mp4"}).status_code
        == 200
    )
    octet = {"Content-Type": "application/octet-stream"}
    assert httpx.put(urls["sensors"], content=b"s", headers=octet).status_code == 200
    # The bucket stays private: no anonymous reads, even with the key known.
    key_url = urls["video"].split("?")[0]
    assert httpx.get(key_url).status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x" * 201},
        {"robot": "r" * 121},
        {"policy_version": "p" * 121},
        {"env_version": "e" * 121},
        {"git_sha": "g" * 65},
        {"source": "cloud"},
        {"seed": 2**64},
        {"seed": "12"},
        {"seed": 1.5},
        {"fps": 0},
        {"fps": -1},
        {"fps": "30"},
        {"metadata": []},
        {"metadata": None},
        {"request_uploads": ["video", "depth"]},
        {"request_uploads": ["video", "video"]},
        {"request_uploads": "video"},
        {"metadata": {"license": {"scope_id": "not-a-license"}}},
        {"name": "nul\u0000byte"},  # PostgreSQL cannot store NUL: a 400, never a 500
        {"metadata": {"k": ["nul\u0000byte"]}},
        {"otel": {"nul\u0000key": 1}},
    ],
)
def test_create_validation_is_400(service: Service, tenant_key, body: dict) -> None:
    response = service.client(tenant_key[1]).post("/api/ingest/episode", json=body)
    assert response.status_code == 400
    assert set(response.json()) == {"error", "request_id"}


def test_malformed_bodies_are_400(service: Service, tenant_key) -> None:
    client = service.client(tenant_key[1])
    headers = {"Content-Type": "application/json"}
    for raw in (b"{", b"[]", b'"x"', b"NaN"):
        response = client.post("/api/ingest/episode", content=raw, headers=headers)
        assert response.status_code == 400, raw
        assert "error" in response.json()


def test_bigint_bounds_as_a_double_prints_them(service: Service, tenant_key) -> None:
    client = service.client(tenant_key[1])
    headers = {"Content-Type": "application/json"}
    for literal, stored in (
        (b"-9223372036854776000", -(2**63)),  # -2**63 as JavaScript prints it
        (b"9223372036854776000", 2**63 - 1),
        (b"-9223372036854775808", -(2**63)),
        (b"8124.0", 8124),
    ):
        body = b'{"request_uploads": [], "seed": ' + literal + b"}"
        response = client.post("/api/ingest/episode", content=body, headers=headers)
        assert response.status_code == 201, literal
        with service.db() as db:
            from robotrace_assets.api.db.models import Episode

            assert db.get(Episode, response.json()["episode_id"]).seed == stored
    for literal in (b"9223372036854775808", b"9223372036854776001", b"-9223372036854775809"):
        body = b'{"seed": ' + literal + b"}"
        assert client.post("/api/ingest/episode", content=body, headers=headers).status_code == 400


def test_limits_and_unknown_fields_are_kept(service: Service, tenant_key) -> None:
    client = service.client(tenant_key[1])
    body = open_episode(
        client,
        name="n" * 200,
        git_sha="g" * 64,
        seed=-(2**63),
        fps=29.97,
        otel={"trace_id": "abc"},
        request_uploads=[],
    )
    episode_id = body["episode_id"]
    finalized = client.post(
        f"/api/ingest/episode/{episode_id}/finalize",
        json={"status": "failed", "failure_time_s": 1.5, "metadata": {"x": 1}},
    )
    assert finalized.status_code == 200
    with service.db() as db:
        from robotrace_assets.api.db.models import Episode

        row = db.get(Episode, episode_id)
        assert row.extra == {"otel": {"trace_id": "abc"}, "failure_time_s": 1.5}
        assert row.seed == -(2**63) and row.fps == 29.97


def test_finalize_idempotent_refinalize_and_metadata_merge(service: Service, tenant_key) -> None:
    client = service.client(tenant_key[1])
    episode_id = open_episode(
        client, metadata={"task": "pick", "scene": "tabletop"}, request_uploads=[]
    )["episode_id"]
    path = f"/api/ingest/episode/{episode_id}/finalize"
    failed = client.post(path, json={"status": "failed", "metadata": {"attempt": 1}})
    assert failed.status_code == 200 and failed.json()["status"] == "failed"
    ready = client.post(
        path, json={"status": "ready", "duration_s": 4.5, "metadata": {"attempt": 2}}
    )
    assert ready.json()["status"] == "ready"
    assert set(ready.json()) == {"episode_id", "status", "updated_at", "verification"}
    again = client.post(path, json={})  # empty body: ready, no roll-up
    assert again.status_code == 200 and again.json() == ready.json()  # the same payload
    assert client.post(path, json={"status": "failed"}).json()["status"] == "ready"
    view = client.get(f"/api/episodes/{episode_id}").json()
    assert view["metadata"] == {"task": "pick", "scene": "tabletop", "attempt": 2}
    assert view["duration_s"] == 4.5
    assert view["verification"]["state"] == "not_applicable"
    for body in ({"status": "recording"}, {"duration_s": -1}, {"bytes_total": -1}, {"fps": 0}):
        assert client.post(path, json=body).status_code == 400


def test_finalize_verifies_what_the_store_holds(service: Service, tenant_key) -> None:
    client = service.client(tenant_key[1])
    body = open_episode(client, request_uploads=["video", "sensors"])
    urls = {u["kind"]: u["url"] for u in body["upload_urls"]}
    path = f"/api/ingest/episode/{body['episode_id']}/finalize"
    # Nothing uploaded and no bytes_total: both requested slots are missing.
    missing = client.post(path, json={}).json()
    assert missing["status"] == "ready"
    assert missing["verification"]["state"] == "failed"
    reasons = {c["name"]: c["reason"] for c in missing["verification"]["checks"] if not c["passed"]}
    assert set(reasons) == {"video_uploaded", "sensors_uploaded"}
    # Re-finalizing after the uploads verifies again and hands the episode off.
    httpx.put(urls["video"], content=b"v" * 10, headers={"Content-Type": "video/mp4"})
    httpx.put(
        urls["sensors"], content=b"s" * 5, headers={"Content-Type": "application/octet-stream"}
    )
    short = client.post(path, json={"bytes_total": 16}).json()["verification"]
    assert short["state"] == "failed"
    assert "bytes_total 16 but the store holds 15" in short["checks"][-1]["reason"]
    done = client.post(path, json={"bytes_total": 15}).json()["verification"]
    assert done["state"] == "pending" and done["segment_id"].startswith("seg_")
    # Once handed off, the objects are final: no fresh upload URLs.
    regen = client.post(f"/api/ingest/episode/{body['episode_id']}/upload-urls", json={})
    assert regen.status_code == 409


def test_regenerate_upload_urls_same_episode_same_keys(service: Service, tenant_key) -> None:
    client = service.client(tenant_key[1])
    body = open_episode(client, request_uploads=["video", "actions"])
    path = f"/api/ingest/episode/{body['episode_id']}/upload-urls"
    fresh = client.post(path, json={})
    assert fresh.status_code == 200
    assert fresh.json()["episode_id"] == body["episode_id"]
    old = {u["kind"]: u["url"].split("?")[0] for u in body["upload_urls"]}
    new = {u["kind"]: u["url"].split("?")[0] for u in fresh.json()["upload_urls"]}
    assert old == new
    only = client.post(path, json={"kinds": ["actions"]}).json()["upload_urls"]
    assert [u["kind"] for u in only] == ["actions"]
    assert client.post(path, json={"kinds": ["sensors"]}).status_code == 400
    assert client.post(path).status_code == 200


def test_auth_failures_are_one_401(service: Service, tenant_key) -> None:
    tenant, key = tenant_key
    key_id = keys.parse(key)[0]
    revoked = service.key(tenant)
    with service.db() as db, db.begin():
        admin.revoke_key(db, keys.parse(revoked)[0])
    wrong_secret = f"rt_{key_id}_{'A' * 43}"
    unknown = keys.mint().token
    bodies = set()
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer rt_nope"},
        {"Authorization": f"Bearer {unknown}"},
        {"Authorization": f"Bearer {wrong_secret}"},
        {"Authorization": f"Bearer {revoked}"},
        {"X-RoboTrace-Key": revoked},
    ):
        response = httpx.post(f"{service.url}/api/ingest/episode", json={}, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="robotrace"'
        bodies.add(response.json()["error"])
    assert bodies == {AUTH_ERROR}
    custom = httpx.post(
        f"{service.url}/api/ingest/episode", json={}, headers={"X-RoboTrace-Key": key}
    )
    assert custom.status_code == 201


def test_scopes_are_enforced(service: Service) -> None:
    tenant = service.tenant()
    reader = service.client(service.key(tenant, scopes=(keys.SCOPE_READ,)))
    response = reader.post("/api/ingest/episode", json={})
    assert response.status_code == 403 and "ingest:write" in response.json()["error"]


def test_other_tenants_episodes_are_404_like_unknown_ids(service: Service, tenant_key) -> None:
    mine = service.client(tenant_key[1])
    theirs = service.client(service.key(service.tenant("rival")))
    episode_id = open_episode(mine)["episode_id"]
    answers = []
    for target in (episode_id, str(uuid.uuid4()), "not-a-uuid"):
        for method, path in (
            ("POST", f"/api/ingest/episode/{target}/finalize"),
            ("POST", f"/api/ingest/episode/{target}/upload-urls"),
            ("GET", f"/api/episodes/{target}"),
            ("GET", f"/api/episodes/{target}/artifact/video"),
        ):
            response = theirs.request(method, path, json={} if method == "POST" else None)
            assert response.status_code == 404
            answers.append((path.replace(target, "ID"), response.json()["error"]))
    assert len(set(answers)) == 4  # the same answer per route whoever owns the id


def test_archived_episode_is_409_until_restored(service: Service, tenant_key) -> None:
    client = service.client(tenant_key[1])
    episode_id = open_episode(client, request_uploads=[])["episode_id"]
    with service.db() as db, db.begin():
        admin.archive_episode(db, episode_id)
    assert client.post(f"/api/ingest/episode/{episode_id}/finalize", json={}).status_code == 409
    assert client.post(f"/api/ingest/episode/{episode_id}/upload-urls", json={}).status_code == 409
    with service.db() as db, db.begin():
        admin.restore_episode(db, episode_id)
    assert client.post(f"/api/ingest/episode/{episode_id}/finalize", json={}).status_code == 200


def test_404_405_413_and_request_ids(service: Service, tenant_key) -> None:
    client = service.client(tenant_key[1])
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]
    assert missing.json()["request_id"] == missing.headers["x-request-id"]
    assert client.post("/api/ingest/episode/", json={}).status_code == 404  # no redirects
    wrong = client.get("/api/ingest/episode")
    assert wrong.status_code == 405 and "error" in wrong.json()
    huge = client.post("/api/ingest/episode", json={"metadata": {"blob": "x" * 1_100_000}})
    assert huge.status_code == 413 and "error" in huge.json()
    assert client.get("/api/health").json() == {"status": "ok"}
    assert client.get("/api/openapi.json").json()["paths"]["/api/ingest/episode"]


def test_unknown_artifact_kind_and_missing_object_are_404(service: Service, tenant_key) -> None:
    client = service.client(tenant_key[1])
    episode_id = open_episode(client, request_uploads=["video"])["episode_id"]
    assert client.get(f"/api/episodes/{episode_id}/artifact/depth").status_code == 404
    assert client.get(f"/api/episodes/{episode_id}/artifact/video").status_code == 404


def test_nothing_secret_reaches_the_logs(
    service: Service, tenant_key, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = service.client(tenant_key[1])
    body = open_episode(client, policy_version="trade-secret-policy", request_uploads=["video"])
    url = body["upload_urls"][0]["url"]
    httpx.put(url, content=b"v", headers={"Content-Type": "video/mp4"})
    client.post(f"/api/ingest/episode/{body['episode_id']}/finalize", json={"bytes_total": 1})
    redirect = client.get(f"/api/episodes/{body['episode_id']}/artifact/video")
    assert redirect.status_code == 302
    # The service's own lines and the server's (the test client's httpx lines are not the server's).
    ours = [r for r in caplog.records if r.name.startswith(("robotrace_assets", "uvicorn"))]
    text = "\n".join(r.getMessage() for r in ours)
    assert "request_id=" in text
    secret = tenant_key[1].split("_", 2)[2]
    for leaked in (secret, "trade-secret-policy", "X-Amz-Signature", redirect.headers["location"]):
        assert leaked not in text


def test_public_url_and_unconfigured_storage(service: Service, tenant_key) -> None:
    from dataclasses import replace

    from robotrace_assets_tests.api.conftest import start_service

    public = start_service(
        replace(service.config, public_artifact_base_url="https://artifacts.example.test"),
        service.bucket,
        service.s3,
    )
    try:
        entry = open_episode(public.client(tenant_key[1]), request_uploads=["video"])
        url = entry["upload_urls"][0]
        assert (
            url["public_url"]
            == "https://artifacts.example.test/"
            + url["url"].split(f"/{service.bucket}/", 1)[1].split("?")[0]
        )
    finally:
        public.stop()
    metadata_only = start_service(
        replace(service.config, storage_enabled=False), service.bucket, service.s3
    )
    try:
        client = metadata_only.client(tenant_key[1])
        body = open_episode(client)
        assert body["storage"] == "unconfigured" and body["upload_urls"] == []
        done = client.post(f"/api/ingest/episode/{body['episode_id']}/finalize", json={})
        assert done.json()["status"] == "ready"
        assert done.json()["verification"]["state"] == "not_applicable"
    finally:
        metadata_only.stop()
