import json

from app.paths import resolve_paths
from app.settings import SCHEMA_VERSION, Settings, SettingsStore


def test_every_field_has_title_description_and_default():
    def walk(model):
        for name, f in model.model_fields.items():
            assert f.title, name
            assert f.description, name
            assert not f.is_required(), name
            ann = f.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                walk(ann)
    walk(Settings)


def test_round_trip(tmp_path):
    store = SettingsStore(tmp_path / "settings.json")
    s = Settings()
    s.device("cpu").mode = "mining"
    s.general.away_minutes = 3
    store.save(s)
    res = store.load()
    assert res.message is None
    assert res.settings.devices["cpu"].mode == "mining"
    assert res.settings.general.away_minutes == 3


def test_corrupt_file_is_kept_aside_not_overwritten(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("{not json")
    res = SettingsStore(path).load()
    assert res.settings == Settings()
    assert "kept it as" in res.message
    kept = list(tmp_path.glob("settings.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text() == "{not json"
    assert not path.exists()


def test_an_invalid_value_falls_back_alone_and_names_the_field(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": 1, "devices": {"cpu": {"mode": "turbo", "max_temp_c": 70}},
                                "general": {"away_minutes": 3}}))
    res = SettingsStore(path).load()
    assert res.message is None and len(res.fallbacks) == 1 and "devices.cpu.mode" in res.fallbacks[0]
    assert "using its default" in res.fallbacks[0]
    assert res.settings.devices["cpu"].mode == "idle" and res.settings.devices["cpu"].max_temp_c == 70
    assert res.settings.general.away_minutes == 3
    assert not list(tmp_path.glob("settings.json.invalid-*")) and path.exists()   # nothing moved aside


def test_newer_version_is_kept_aside(tmp_path):
    path = tmp_path / "settings.json"
    newer = {"schema_version": SCHEMA_VERSION + 1, "future": True}
    path.write_text(json.dumps(newer))
    res = SettingsStore(path).load()
    assert "newer Knowledge Miner" in res.message
    (kept,) = tmp_path.glob(f"settings.json.v{SCHEMA_VERSION + 1}-*")
    assert json.loads(kept.read_text()) == newer


def test_save_is_atomic_leaves_no_temp_files(tmp_path):
    store = SettingsStore(tmp_path / "settings.json")
    for i in range(5):
        s = Settings()
        s.general.away_minutes = i + 1
        store.save(s)
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]


def test_kminer_home_overrides_platform_dirs(tmp_path):
    p = resolve_paths({"KMINER_HOME": str(tmp_path)})
    assert p.settings_file == tmp_path / "config" / "settings.json"
    assert p.keystore_dir == tmp_path / "data" / "keystore"
    assert p.log_file == tmp_path / "logs" / "kminer.log"
