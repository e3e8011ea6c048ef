"""The artifact store is busy: a real HTTP server on 127.0.0.1 answers 503 to the first
requests for a spec; the miner retries with backoff (logged), then claims and runs the job."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.agent.conftest import NTK, render_spec_bytes, step_until
from wallet.market import JobStatus


def test_a_busy_store_is_retried_with_backoff_then_the_job_is_claimed(world):
    data = render_spec_bytes(frames=1)
    hits = []

    class Busy(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            hits.append(self.path)
            if len(hits) <= 2:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_HEAD(self):  # noqa: N802
            self.send_response(503 if len(hits) <= 2 else 200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/specs/job.json"
        job_id, _ = world.market.post(world.buyer, kind="render", spec_hash="0x" + hashlib.sha256(data).hexdigest(),
                                      spec_uri=url, reward_wei=NTK, deadline=world.chain.latest_timestamp() + 7200,
                                      review_window_s=600)
        world.ctx.settings.jobs.input_hosts = "127.0.0.1"  # the user trusts this store: loopback is refused otherwise
        svc = world.service(backoff_first_s=0.1)
        assert step_until(svc, job_id, {"submitted"}, timeout_s=90) == "submitted"
        retries = [d for d in reversed(svc.pricing_decisions()) if d.job_id == job_id and d.decision == "retry"]
        assert len(retries) >= 1 and "cannot fetch" in retries[0].reason and "retry in" in retries[0].reason
        assert world.market.job(job_id).status == JobStatus.SUBMITTED
        assert sum(p == "/specs/job.json" for p in hits) >= 3
    finally:
        server.shutdown()
        server.server_close()
