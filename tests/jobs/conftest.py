"""Fixtures for the job runtime: a real queue, artifact store and worker processes in tmp."""

from __future__ import annotations

import hashlib
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobs.artifacts import ArtifactStore
from jobs.execute import Device, RuntimeConfig, execute_attempt
from jobs.queue import JobQueue
from jobs.spec import parse_spec


@dataclass
class Rig:
    """A throwaway 'rig': queue, store, job folders and the files a job must never touch."""

    root: Path
    queue: JobQueue
    store: ArtifactStore
    jobs_dir: Path
    home: Path
    secret: Path
    sentinel: Path

    def config(self, level: str, **kw) -> RuntimeConfig:
        return RuntimeConfig(jobs_dir=self.jobs_dir, store=self.store, level=level,  # type: ignore[arg-type]
                             allow_code_jobs_basic=kw.pop("allow_code_jobs_basic", True),
                             max_output_mb=kw.pop("max_output_mb", 4096), hide=[self.home], **kw)

    def python_job(self, job_id: str, code: str, *, inputs: dict | None = None, spec_dir: Path | None = None,
                   **resources) -> str:
        """Queue a `python` job whose buyer module is `code` (plus `inputs`: name -> InputRef
        fields); returns its id."""
        src = textwrap.dedent(code).encode()
        sha = self.store.put_bytes(src)
        res = {"max_wall_s": 20, "max_ram_mb": 512, "max_disk_mb": 8, "max_processes": 32, **resources}
        spec = parse_spec({"id": job_id, "kind": "python", "inputs": {"module": {"sha256": sha}, **(inputs or {})},
                           "resources": res, "seed": 7})
        self.queue.add(spec, spec_dir=spec_dir)
        return job_id

    def sleep_job(self, job_id: str, seconds: float, steps: int = 10, **resources) -> str:
        spec = parse_spec({"id": job_id, "kind": "sleep", "params": {"seconds": seconds, "steps": steps},
                           "resources": {"max_wall_s": 60, **resources}})
        self.queue.add(spec)
        return job_id

    def run(self, job_id: str, level: str, device: Device | None = None, on_event=None, **kw):
        """Run the queued job once under `level` (RuntimeConfig fields in `kw`); (Outcome, JobRecord)."""
        out = execute_attempt(self.queue, self.config(level, **kw), job_id, device or Device("cpu"), on_event=on_event)
        return out, self.queue.get(job_id)

    def attempt_dir(self, job_id: str, n: int = 1) -> Path:
        return self.jobs_dir / job_id / f"attempt-{n}"

    def stored_blobs(self) -> list[Path]:
        """Every file in the artifact store (inputs the test put there included)."""
        return [p for p in self.store.root.rglob("*") if p.is_file()] if self.store.root.exists() else []

    def untouched(self) -> bool:
        return (self.secret.read_text() == "wallet-secret-do-not-leak"
                and hashlib.sha256(self.sentinel.read_bytes()).hexdigest() == hashlib.sha256(b"rig file").hexdigest()
                and sorted(p.name for p in self.sentinel.parent.iterdir()) == ["rig.txt"])


@pytest.fixture
def rig(tmp_path, kminer_home) -> Rig:
    home = kminer_home
    (home / "data" / "keystore").mkdir(parents=True)
    secret = home / "data" / "keystore" / "key.json"
    secret.write_text("wallet-secret-do-not-leak")
    rigdir = tmp_path / "rig-files"
    rigdir.mkdir()
    sentinel = rigdir / "rig.txt"
    sentinel.write_bytes(b"rig file")
    q = JobQueue(tmp_path / "jobs.sqlite")
    r = Rig(tmp_path, q, ArtifactStore(tmp_path / "artifacts"), tmp_path / "jobs", home, secret, sentinel)
    yield r
    q.close()


def dump(obj) -> str:
    return json.dumps(obj, default=str, indent=1)
