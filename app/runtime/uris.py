"""Where a stored artifact is published, and where a relative URI in a spec points: the one
place the miner (results) and the buyer (specs, assets) turn hashes into URIs."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin, urlparse
from urllib.request import url2pathname

from jobs.artifacts import ArtifactStore


def artifact_uri(store: ArtifactStore, sha: str) -> str:
    """Where others fetch stored artifact `sha`: `<remote>/<sha>` when the store has a shared
    remote (a folder or an fsspec URL), else the file:// URI of the local copy (machines that
    share this folder)."""
    if store.remote:
        return f"{store.remote}/{sha}"
    return store.path(sha).resolve().as_uri()


def resolve_uri(uri: str | None, base_uri: str) -> str | None:
    """`uri` as an absolute location: a relative one is relative to `base_uri` (the spec's own
    URI: file://, any URL scheme, or a plain path); absolute ones and None come back as given."""
    if not uri or "://" in uri or Path(uri).is_absolute():
        return uri
    if base_uri.startswith("file://"):
        return (Path(url2pathname(urlparse(base_uri).path)).parent / uri).resolve().as_uri()
    if "://" in base_uri:
        return urljoin(base_uri, uri)
    return str(Path(base_uri).parent / uri)
