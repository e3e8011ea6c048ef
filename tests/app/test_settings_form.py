from app.forms import settings as settings_form
from app.settings import Settings


def test_sections_come_from_the_model_and_skip_app_state():
    secs = {s.name: s for s in settings_form.sections()}
    assert {"general", "jobs", "wallet", "earnings"} <= set(secs)
    general = {f.name: f for f in secs["general"].fields}
    assert "tray_notice_shown" not in general and "window_geometry" not in general
    away = general["away_minutes"]
    assert away.kind == "float" and away.minimum == 0.1 and away.maximum == 1440
    assert away.title and away.description
    assert general["theme"].kind == "choice" and general["theme"].choices == ("system", "light", "dark")
    rpc = {f.name: f for f in secs["wallet"].fields}["rpc_url"]
    assert rpc.kind == "text" and rpc.optional


def test_apply_validates_and_names_the_field():
    s = Settings()
    new, errors = settings_form.apply(s, "general", {"away_minutes": 0, "theme": "dark"})
    assert new is None and "away_minutes" in errors
    assert s.general.away_minutes == 10  # untouched
    new, errors = settings_form.apply(s, "general", {"away_minutes": 3, "theme": "dark"})
    assert errors == {} and new.away_minutes == 3 and new.theme == "dark"


def test_empty_optional_text_becomes_none():
    s = Settings()
    s.wallet.rpc_url = "http://127.0.0.1:8545"
    new, errors = settings_form.apply(s, "wallet", {"rpc_url": "  "})
    assert errors == {} and new.rpc_url is None


def test_shared_store_url_takes_uploadable_urls_only():
    s = Settings()
    new, errors = settings_form.apply(s, "jobs", {"artifact_store_url": "file:///mnt/shared/kminer/"})
    assert errors == {} and new.artifact_store_url == "file:///mnt/shared/kminer"
    for bad in ("https://example.com/store", "/mnt/shared", "s3://"):
        new, errors = settings_form.apply(s, "jobs", {"artifact_store_url": bad})
        assert new is None and "artifact_store_url" in errors, bad
    new, errors = settings_form.apply(s, "jobs", {"artifact_store_url": ""})
    assert errors == {} and new.artifact_store_url is None
