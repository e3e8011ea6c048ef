"""The persistent job queue: SQLite in WAL mode, one row per job, one per attempt.

States: queued -> running <-> paused -> succeeded | failed | cancelled. A job that was
running when the app died is found by `recover()` at the next start: its attempt is marked
failed with "app stopped", a leftover worker is killed, the attempt's folder (its partial
outputs) is deleted, and the job is queued again. Every change is one transaction with
`synchronous=FULL`, so kill -9 at any moment loses no queued job.

Thread-safe: one connection guarded by a lock (SQLite work here is tiny).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from common.sqlite import open_db
from jobs.estimate import with_output_files_for_work
from jobs.spec import JobSpec, parse_spec

log = logging.getLogger(__name__)

STATES = ("queued", "running", "paused", "succeeded", "failed", "cancelled")
FINAL = frozenset({"succeeded", "failed", "cancelled"})
APP_STOPPED = "app stopped"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    result TEXT,
    output_sha TEXT,
    device_id TEXT,
    spec_dir TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, created_at);
CREATE TABLE IF NOT EXISTS attempts (
    job_id TEXT NOT NULL REFERENCES jobs(id),
    n INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    device_id TEXT,
    sandbox TEXT,
    job_dir TEXT,
    pid INTEGER,
    pid_start REAL,
    owner_pid INTEGER,
    owner_start REAL,
    started_at REAL NOT NULL,
    ended_at REAL,
    first_progress_s REAL,
    PRIMARY KEY (job_id, n)
);
"""


class QueueError(Exception):
    """A queue operation that cannot be done (unknown job, wrong state); one line."""


@dataclass(frozen=True)
class JobRecord:
    id: str
    spec: JobSpec
    state: str
    attempts: int
    reason: str | None
    result: dict[str, Any] | None
    output_sha: str | None
    device_id: str | None
    spec_dir: str | None
    cancel_requested: bool
    created_at: float
    updated_at: float

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.spec.kind, "state": self.state, "attempts": self.attempts,
                "reason": self.reason, "result": self.result, "output_sha256": self.output_sha,
                "device_id": self.device_id, "cancel_requested": self.cancel_requested,
                "created_at": self.created_at, "updated_at": self.updated_at}


@dataclass(frozen=True)
class AttemptRecord:
    job_id: str
    n: int
    state: str
    reason: str | None
    device_id: str | None
    sandbox: str | None
    job_dir: str | None
    pid: int | None
    started_at: float
    ended_at: float | None
    first_progress_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class JobQueue:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = open_db(self.path, any_thread=True, rows=True)
        with self._lock:
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self):
        q = self

        class _Tx:
            def __enter__(self):
                q._lock.acquire()
                q._db.execute("BEGIN IMMEDIATE")
                return q._db

            def __exit__(self, et, ev, tb):
                try:
                    q._db.execute("COMMIT" if et is None else "ROLLBACK")
                finally:
                    q._lock.release()
                return False

        return _Tx()

    # ---- jobs ------------------------------------------------------------------------
    def add(self, spec: JobSpec, *, spec_dir: Path | None = None) -> JobRecord:
        """Queue a new job; a job id already in the queue is an error unless it ended, in
        which case it is queued again (a new run of the same spec). A render whose frames
        leave more files than the default limit gets room for them (jobs.estimate)."""
        spec = with_output_files_for_work(spec)
        now = time.time()
        with self._tx() as c:
            row = c.execute("SELECT state FROM jobs WHERE id=?", (spec.id,)).fetchone()
            if row is not None and row["state"] not in FINAL:
                raise QueueError(f"job {spec.id} is already {row['state']}")
            c.execute("INSERT OR REPLACE INTO jobs (id, spec, kind, state, attempts, reason, result, output_sha, "
                      "device_id, spec_dir, cancel_requested, created_at, updated_at) VALUES "
                      "(?, ?, ?, 'queued', COALESCE((SELECT attempts FROM jobs WHERE id=?), 0), NULL, NULL, NULL, "
                      "NULL, ?, 0, ?, ?)",
                      (spec.id, spec.model_dump_json(), spec.kind, spec.id, str(spec_dir) if spec_dir else None, now, now))
        return self.get(spec.id)

    def get(self, job_id: str) -> JobRecord:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise QueueError(f"no job {job_id!r} in the queue")
        return _job(row)

    def list(self, states: Iterable[str] | None = None, limit: int = 1000) -> list[JobRecord]:
        with self._lock:
            if states:
                st = list(states)
                rows = self._db.execute(f"SELECT * FROM jobs WHERE state IN ({','.join('?' * len(st))}) "
                                        "ORDER BY created_at LIMIT ?", (*st, limit)).fetchall()
            else:
                rows = self._db.execute("SELECT * FROM jobs ORDER BY created_at LIMIT ?", (limit,)).fetchall()
        return [_job(r) for r in rows]

    def run_seconds(self, now: float | None = None) -> dict[str, float]:
        """{job id: seconds its attempts ran}, one query (an attempt still running counts to `now`)."""
        import time

        t = time.time() if now is None else now
        with self._lock:
            rows = self._db.execute("SELECT job_id, SUM(MAX(0, COALESCE(ended_at, ?) - started_at)) AS s "
                                    "FROM attempts GROUP BY job_id", (t,)).fetchall()
        return {r["job_id"]: float(r["s"] or 0.0) for r in rows}

    def attempts(self, job_id: str) -> list[AttemptRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM attempts WHERE job_id=? ORDER BY n", (job_id,)).fetchall()
        return [AttemptRecord(r["job_id"], r["n"], r["state"], r["reason"], r["device_id"], r["sandbox"], r["job_dir"],
                              r["pid"], r["started_at"], r["ended_at"], r["first_progress_s"]) for r in rows]

    # ---- attempts --------------------------------------------------------------------
    def start_attempt(self, job_id: str, *, device_id: str, sandbox: str, job_dir: Path) -> int | None:
        """Move a queued job to running and open attempt n (returned); None if not queued."""
        now = time.time()
        with self._tx() as c:
            cur = c.execute("UPDATE jobs SET state='running', attempts=attempts+1, device_id=?, reason=NULL, "
                            "updated_at=? WHERE id=? AND state='queued' AND cancel_requested=0", (device_id, now, job_id))
            if cur.rowcount != 1:
                return None
            n = c.execute("SELECT attempts FROM jobs WHERE id=?", (job_id,)).fetchone()[0]
            c.execute("INSERT OR REPLACE INTO attempts (job_id, n, state, device_id, sandbox, job_dir, owner_pid, "
                      "owner_start, started_at) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                      (job_id, n, device_id, sandbox, str(job_dir), os.getpid(), _own_start(), now))
        return n

    def set_pid(self, job_id: str, n: int, pid: int, pid_start: float | None) -> None:
        with self._tx() as c:
            c.execute("UPDATE attempts SET pid=?, pid_start=? WHERE job_id=? AND n=?", (pid, pid_start, job_id, n))

    def set_paused(self, job_id: str, paused: bool) -> None:
        with self._tx() as c:
            c.execute("UPDATE jobs SET state=?, updated_at=? WHERE id=? AND state IN ('running','paused')",
                      ("paused" if paused else "running", time.time(), job_id))

    def finish_attempt(self, job_id: str, n: int, *, status: str, reason: str | None = None,
                       result: dict[str, Any] | None = None, output_sha: str | None = None,
                       first_progress_s: float | None = None) -> None:
        if status not in FINAL:
            raise ValueError(status)
        now = time.time()
        with self._tx() as c:
            c.execute("UPDATE attempts SET state=?, reason=?, ended_at=?, first_progress_s=? WHERE job_id=? AND n=?",
                      (status, reason, now, first_progress_s, job_id, n))
            c.execute("UPDATE jobs SET state=?, reason=?, result=?, output_sha=?, updated_at=? WHERE id=?",
                      (status, reason, json.dumps(result) if result is not None else None, output_sha, now, job_id))

    def requeue_attempt(self, job_id: str, n: int, reason: str = APP_STOPPED) -> None:
        """End attempt n as failed with `reason` and queue the job again (app shutdown)."""
        now = time.time()
        with self._tx() as c:
            c.execute("UPDATE attempts SET state='failed', reason=?, ended_at=? WHERE job_id=? AND n=?",
                      (reason, now, job_id, n))
            c.execute("UPDATE jobs SET state='queued', reason=?, updated_at=? WHERE id=?",
                      (f"requeued: previous attempt failed ({reason})", now, job_id))

    def request_cancel(self, job_id: str) -> str:
        """Cancel a job: a queued one at once; a running one is flagged for its runner.
        Returns the state after the call."""
        now = time.time()
        with self._tx() as c:
            row = c.execute("SELECT state FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None:
                raise QueueError(f"no job {job_id!r} in the queue")
            st = row["state"]
            if st == "queued":
                c.execute("UPDATE jobs SET state='cancelled', reason='cancelled by request', updated_at=? WHERE id=?",
                          (now, job_id))
                return "cancelled"
            if st in ("running", "paused"):
                c.execute("UPDATE jobs SET cancel_requested=1, updated_at=? WHERE id=?", (now, job_id))
            return st

    def cancel_requested(self, job_id: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT cancel_requested FROM jobs WHERE id=?", (job_id,)).fetchone()
        return bool(row and row[0])

    def next_queued(self) -> list[JobRecord]:
        return self.list(["queued"])

    # ---- recovery --------------------------------------------------------------------
    def recover(self, jobs_dir: Path) -> list[str]:
        """After a restart: fail the attempts the dead app left running ("app stopped"),
        kill their leftover workers, delete their folders, and requeue the jobs.

        Attempts owned by another live process (a second `kminer job run`) are left alone."""
        jobs_dir = Path(jobs_dir).resolve()
        requeued: list[str] = []
        now = time.time()
        with self._tx() as c:
            rows = c.execute("SELECT a.*, j.cancel_requested FROM attempts a JOIN jobs j ON j.id=a.job_id "
                             "WHERE j.state IN ('running','paused') AND a.n=j.attempts").fetchall()
            stale = []
            for r in rows:
                if _alive(r["owner_pid"], r["owner_start"]):
                    continue
                stale.append(r)
                _kill_leftover(r["pid"], r["pid_start"])
                _remove_attempt_dir(r["job_dir"], jobs_dir)
                c.execute("UPDATE attempts SET state='failed', reason=?, ended_at=? WHERE job_id=? AND n=?",
                          (APP_STOPPED, now, r["job_id"], r["n"]))
            for s in stale:
                cancelled = s["cancel_requested"]
                if cancelled:
                    c.execute("UPDATE jobs SET state='cancelled', reason='cancelled by request', updated_at=? "
                              "WHERE id=?", (now, s["job_id"]))
                else:
                    c.execute("UPDATE jobs SET state='queued', reason=?, updated_at=? WHERE id=?",
                              (f"requeued: previous attempt failed ({APP_STOPPED})", now, s["job_id"]))
                    requeued.append(s["job_id"])
        return requeued


def _job(row: sqlite3.Row) -> JobRecord:
    return JobRecord(row["id"], parse_spec(json.loads(row["spec"])), row["state"], row["attempts"], row["reason"],
                     json.loads(row["result"]) if row["result"] else None, row["output_sha"], row["device_id"],
                     row["spec_dir"], bool(row["cancel_requested"]), row["created_at"], row["updated_at"])


def _own_start() -> float | None:
    try:
        import psutil

        return psutil.Process(os.getpid()).create_time()
    except Exception:
        return None


def _alive(pid: int | None, start: float | None) -> bool:
    """Whether process `pid` still runs and is the same one (same start time)."""
    if not pid:
        return False
    if pid == os.getpid():
        return False     # our own earlier attempts cannot be running if we are recovering
    try:
        import psutil

        p = psutil.Process(pid)
        return start is None or abs(p.create_time() - start) < 0.5
    except Exception:
        return False


def _kill_leftover(pid: int | None, pid_start: float | None) -> None:
    """Kill a worker the dead app left behind, only if it is provably the same process."""
    if not pid or pid <= 1 or pid == os.getpid() or pid_start is None:
        return
    try:
        import psutil

        p = psutil.Process(pid)
        if abs(p.create_time() - pid_start) > 0.5:
            return    # the pid was reused by an unrelated process
        for child in p.children(recursive=True):
            try:
                child.kill()
            except psutil.Error:
                pass
        p.kill()
    except Exception:
        return


def _remove_attempt_dir(job_dir: str | None, jobs_dir: Path) -> None:
    """Delete a dead attempt's folder, only when it lies strictly inside `jobs_dir`."""
    if not job_dir:
        return
    d = Path(job_dir).resolve()
    if jobs_dir in d.parents and d != jobs_dir:
        from jobs.safe_fs import remove_tree

        remove_tree(d)   # no link followed; folders a job made unreadable or deep are handled
    else:
        log.warning("not deleting attempt folder %s outside %s", d, jobs_dir)

