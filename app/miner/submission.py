"""From a finished run to a submitted result: `running` -> `uploaded` -> `submitted`.

A run that succeeded has its output put where the buyer looks (the store's remote) and noted
in the ledger against its device; its hash is then submitted before the deadline in chain
time. A run that failed is run again while attempts and the deadline allow; a run that can no
longer make its deadline (judged from its progress rate) is given up.

`Submission` gets everything it works with in its constructor; it runs on the one thread that
calls MinerService.step().
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.chain_clock import ChainClock
from app.miner.claims import SAFETY, SUBMIT_MARGIN_S
from app.miner.db import MarketJobRow, MinerDB
from app.miner.fleet import Fleet
from app.miner.progress import RunProgress
from app.miner.release import PaymentLedger
from app.miner.transient import Transient
from app.runtime import artifact_uri
from jobs.artifacts import ArtifactStore
from jobs.queue import JobQueue, JobRecord, QueueError
from jobs.scheduler import Scheduler
from wallet.errors import ContractRevert

log = logging.getLogger("app.miner.service")

MAX_RUN_ATTEMPTS = 3
"""A claimed job whose run fails is run again, up to this many runs in all, while the
deadline leaves time for another run."""
LATE = "the deadline passed before the result could be submitted"


@dataclass(kw_only=True, eq=False)
class Submission:
    """See the module docstring. `queue_id(job_id)` names a market job in the job queue."""

    db: MinerDB
    queue: JobQueue
    store: ArtifactStore
    market: Any
    account: Any
    ledger: PaymentLedger
    scheduler: Scheduler
    fleet: Fleet
    clock: ChainClock
    progress: RunProgress
    queue_id: Callable[[int], str]

    def advance_running(self, r: MarketJobRow) -> None:
        """`running`: note a finished run (-> uploaded), run a failed one again, or give up."""
        try:
            q = self.queue.get(self.queue_id(r.job_id))
        except QueueError:
            self.db.set(r.job_id, state="claimed")
            return
        if q.state == "succeeded" and q.output_sha:
            if self.store.remote:
                try:  # the result must be where the buyer looks for it before it is submitted
                    self.store.put_file(self.store.path(q.output_sha))
                except Exception as e:
                    raise Transient("the artifact store", e) from e
            key = self.fleet.known_key(q.device_id) or r.device_key or "cpu"
            self.ledger.assign_job(r.job_id, key, at=time.time())
            self.db.set(r.job_id, state="uploaded", device_key=key, output_sha=q.output_sha,
                        result_uri=artifact_uri(self.store, q.output_sha), uploaded_at=time.time())
        elif q.state == "failed" and self.retry_blocker(r, q) is None:
            self.queue.add(q.spec)  # the same spec again; the queue keeps counting the attempts
            self.progress.restart(r.job_id)
            self.db.set(r.job_id, reason=f"attempt {q.attempts} failed ({q.reason}); running it again")
            log.warning("market job %s: attempt %s failed (%s); running it again", r.job_id, q.attempts, q.reason)
        elif q.state in ("failed", "cancelled"):
            blocker = self.retry_blocker(r, q) if q.state == "failed" else None
            self.db.set(r.job_id, state="failed", reason=(q.reason or q.state) + (f" ({blocker})" if blocker else ""))
        elif r.deadline is not None and self.clock.now >= r.deadline:
            self._give_up(r, "the deadline passed before the result was ready")
        else:
            why = self._late(r)
            if why:
                self._give_up(r, why)

    def retry_blocker(self, r: MarketJobRow, q: JobRecord) -> str | None:
        """Why a failed run of a claimed job is not run again, or None to run it again: a
        failure (worker killed, out of memory, a crash) may not come back, and the stake and the
        reward are lost unless a result arrives before the deadline."""
        if q.attempts >= MAX_RUN_ATTEMPTS:
            return f"gave up after {q.attempts} attempts"
        if r.deadline is not None:
            need = (r.expected_s or 0.0) * SAFETY + SUBMIT_MARGIN_S
            if max(self.clock.now, time.time()) + need > r.deadline:
                return "no time left before the deadline for another attempt"
        return None

    def _late(self, r: MarketJobRow) -> str | None:
        """Why the running job can no longer make its deadline, judged from its progress rate."""
        if r.deadline is None:
            return None
        rj = self.scheduler.running().get(self.queue_id(r.job_id))
        if rj is None or rj.paused:
            return None  # not judged while paused (the rate would include the pause)
        rate = self.progress.rate(r.job_id)
        if rate is None:
            return None
        _, done, per_s = rate
        # the deadline is chain time: count from the chain's clock where it runs ahead of ours
        finish = max(self.clock.now, time.time()) + (1.0 - done) / per_s + SUBMIT_MARGIN_S
        if finish <= r.deadline:
            return None
        return (f"expected to finish at {_hms(finish)} ({done * 100:.0f}% done at {per_s * 100:.2f}%/s), "
                f"after the deadline {_hms(r.deadline)}")

    def _give_up(self, r: MarketJobRow, reason: str) -> None:
        self.scheduler.cancel(self.queue_id(r.job_id))
        self.db.set(r.job_id, state="failed", reason=reason)
        log.warning("market job %s given up: %s", r.job_id, reason)

    def submit(self, r: MarketJobRow) -> None:
        """`uploaded`: submit the result's hash while the chain still takes it (-> submitted)."""
        from wallet.market import JobStatus  # deferred: loads web3 (~1.5 s)

        m = self.market
        j = m.job(r.job_id)
        if j.status == JobStatus.CLAIMED:
            self.clock.catch_up(j.deadline)  # a chain whose last block is old: bring its time up first
        if j.status == JobStatus.CLAIMED and self.clock.now > j.deadline:
            self.db.set(r.job_id, state="failed", reason=LATE)  # the contract refuses it now
            return
        if j.status == JobStatus.CLAIMED:
            try:
                res = m.submit(self.account, r.job_id, "0x" + r.output_sha, r.result_uri)
            except ContractRevert as e:  # chain time was past the deadline after all
                if e.revert.name != "DeadlinePassed":
                    raise
                self.db.set(r.job_id, state="failed", reason=LATE)
                return
            j = m.job(r.job_id)
            self.db.set(r.job_id, state="submitted", tx_submit=res.tx_hash, submitted_at=j.submitted_at,
                        review_window_s=j.review_window_s, dirty=0)
        elif j.status >= JobStatus.SUBMITTED:
            self.db.set(r.job_id, state="submitted", submitted_at=j.submitted_at, review_window_s=j.review_window_s,
                        dirty=1)
        else:
            self.db.set(r.job_id, state="failed", reason=f"the job is {j.status.name.lower()} on the chain")


def _hms(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))
