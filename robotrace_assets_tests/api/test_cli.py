"""`robotrace tenants|keys|episodes` against a real database file, and the migration chain."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from robotrace_assets.api.db.models import ApiKey, Episode
from robotrace_assets.api.db.session import alembic_config, make_engine, make_sessionmaker
from robotrace_assets.cli import main
from robotrace_assets.ingest import keys


def test_keys_lifecycle_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'ingest.sqlite3'}"
    monkeypatch.setenv("ROBOTRACE_API_DATABASE_URL", url)
    assert main(["tenants", "create", "acme", "--license-scope-id", "lic_bad"]) == 2
    capsys.readouterr()
    assert main(["tenants", "create", "acme"]) == 0
    tenant = capsys.readouterr().out.strip()
    assert tenant.startswith("ten_")
    assert main(["keys", "create", tenant, "--scope", "ingest:write"]) == 0
    token = capsys.readouterr().out.splitlines()[1]
    key_id, secret = keys.parse(token)
    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing and "active" in listing and secret not in listing
    assert main(["keys", "rotate", key_id]) == 0
    rotated = capsys.readouterr().out.splitlines()[1]
    assert keys.parse(rotated)[0] != key_id
    factory = make_sessionmaker(make_engine(url))
    with factory() as db:
        old = db.get(ApiKey, key_id)
        assert old.revoked_at is not None and old.replaced_by == keys.parse(rotated)[0]
        assert old.secret_sha256 == keys.hash_secret(secret) and old.secret_sha256 != secret
    assert main(["keys", "revoke", rotated]) == 0
    assert main(["keys", "rotate", key_id]) == 2  # a revoked key is not rotated
    episode_id = str(uuid.uuid4())
    with factory() as db, db.begin():
        db.add(
            Episode(
                id=episode_id,
                tenant_id=tenant,
                status="ready",
                storage="r2",
                source="real",
                metadata_={},
                extra={},
                request_uploads=[],
                media_session_id="msess_x",
                segment_id="seg_x",
            )
        )
    capsys.readouterr()
    assert main(["episodes", "archive", episode_id]) == 0
    assert capsys.readouterr().out.split() == [episode_id, "archived"]
    assert main(["episodes", "restore", episode_id]) == 0
    assert capsys.readouterr().out.split() == [episode_id, "ready"]
    assert main(["episodes", "archive", str(uuid.uuid4())]) == 2


def test_migrations_have_one_head_starting_at_0001_ingest() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
    assert [r.revision for r in script.walk_revisions()][-1] == "0001_ingest"


def test_models_match_the_migrations(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from robotrace_assets.api.app import ROUTERS, _load
    from robotrace_assets.api.db.models import Base
    from robotrace_assets.api.db.session import migrate

    for spec in ROUTERS:  # every router's tables are declared when its module loads
        _load(spec)
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    migrate(url)
    with make_engine(url).connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
