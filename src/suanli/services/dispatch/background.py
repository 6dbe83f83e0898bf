"""The platform's background loop: failover of silent leases, then scheduling, every tick."""

from __future__ import annotations

import logging
import threading

from suanli.adapters.clock import Clock
from suanli.adapters.store import Database
from suanli.services.dispatch import agents
from suanli.services.market import sweep as market_sweep

log = logging.getLogger("suanli.scheduler")
MAX_CONSECUTIVE_ERRORS_LOGGED = 10


class SchedulerLoop:
    """Runs agents.tick on its own thread until stopped; one per platform process."""

    def __init__(self, db: Database, clock: Clock, interval_s: float, *,
                 heartbeat_ttl_s: int, claim_timeout_s: int) -> None:
        assert 0.05 <= interval_s <= 60, "scheduler interval must be 0.05..60 s"
        self._db, self._clock, self._interval_s = db, clock, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="suanli-scheduler", daemon=True)
        self._errors = 0
        self._ttl_s, self._claim_timeout_s = heartbeat_ttl_s, claim_timeout_s

    def start(self) -> None:
        with self._db.unit_of_work() as session:
            extended = agents.grace_after_restart(session, self._clock.now(), self._ttl_s)
        if extended:
            log.info("gave %d in-flight leases a fresh heartbeat deadline after start", extended)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                with self._db.unit_of_work() as session:
                    expired, placed = agents.tick(session, self._clock.now(),
                                                 self._claim_timeout_s)
                if expired or placed:
                    log.info("failover: %d leases expired; scheduling: %d jobs placed",
                             expired, placed)
                with self._db.unit_of_work() as session:  # issue 14: the exchange's step
                    market_sweep.sweep(session, self._clock.now())
                self._errors = 0
            except Exception:  # the loop must outlive one bad pass; the next retries
                self._errors += 1
                if self._errors <= MAX_CONSECUTIVE_ERRORS_LOGGED:
                    log.exception("scheduler pass failed")
