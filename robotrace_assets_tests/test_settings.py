import pytest

from robotrace_assets.settings import LOCAL_ACCESS_KEY_ID, Settings, SettingsError


def test_local_defaults_need_no_configuration() -> None:
    settings = Settings.from_env({})
    assert settings.endpoint_url == "http://127.0.0.1:8333"
    assert settings.access_key_id == LOCAL_ACCESS_KEY_ID
    assert settings.region == "us-east-1"
    assert not settings.is_r2


def test_r2_account_id_derives_endpoint_and_auto_region() -> None:
    settings = Settings.from_env(
        {
            "ROBOTRACE_R2_ACCOUNT_ID": "abc123",
            "ROBOTRACE_S3_ACCESS_KEY_ID": "key",
            "ROBOTRACE_S3_SECRET_ACCESS_KEY": "secret",
        }
    )
    assert settings.endpoint_url == "https://abc123.r2.cloudflarestorage.com"
    assert settings.region == "auto"
    assert settings.is_r2 and settings.provider == "cloudflare-r2"


def test_remote_endpoint_requires_credentials() -> None:
    with pytest.raises(SettingsError, match="ACCESS_KEY_ID"):
        Settings.from_env({"ROBOTRACE_R2_ACCOUNT_ID": "abc123"})


def test_endpoint_and_account_are_exclusive() -> None:
    with pytest.raises(SettingsError, match="not both"):
        Settings.from_env(
            {"ROBOTRACE_R2_ACCOUNT_ID": "a1", "ROBOTRACE_S3_ENDPOINT_URL": "https://x"}
        )


def test_account_id_must_be_alphanumeric() -> None:
    with pytest.raises(SettingsError):
        Settings.from_env({"ROBOTRACE_R2_ACCOUNT_ID": "evil.example.com/"})


def test_secrets_stay_out_of_repr() -> None:
    settings = Settings.from_env(
        {"ROBOTRACE_S3_SECRET_ACCESS_KEY": "s3cr3t", "ROBOTRACE_S3_ACCESS_KEY_ID": "k"}
    )
    assert "s3cr3t" not in repr(settings)


def test_known_tenants_parsed() -> None:
    settings = Settings.from_env({"ROBOTRACE_TENANTS": "ten_A, ten_B,"})
    assert settings.known_tenants == frozenset({"ten_A", "ten_B"})
