"""The job runtime as the app uses it: its queue, sandbox and artifact store from the settings
(jobs), the URIs stored artifacts are published at (uris), and the scene editor's live preview
child (preview).

Other packages use these public names, never the modules inside (import-linter checks it).
"""

from app.runtime.jobs import (JobsService, input_policy, local_market, open_queue, parse_device, read_delivered_json,
                              runtime_config, stranger_text)
from app.runtime.preview import (Orbit, PreviewError, PreviewImage, PreviewResult, PreviewService, asset_dir_for,
                                 default_orbit, find_inputs, import_asset, server_argv)
from app.runtime.uris import artifact_uri, resolve_uri

__all__ = ["JobsService", "Orbit", "PreviewError", "PreviewImage", "PreviewResult", "PreviewService",
           "artifact_uri", "asset_dir_for", "default_orbit", "find_inputs", "import_asset", "input_policy", "local_market",
           "open_queue", "parse_device", "read_delivered_json", "resolve_uri", "runtime_config", "server_argv",
           "stranger_text"]
