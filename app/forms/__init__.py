"""Forms generated from pydantic models, without Qt: the scene editor's (scene) and the
settings dialog's (settings), over shared field helpers (fields).

Each module is a namespace the views use as a whole (`from app.forms import scene as scene_form`;
`scene_form.errors(...)`, `settings_form.apply(...)`), so this package re-exports nothing.
"""
