"""Publishing claimed deliveries, part by part, exactly once.

A publish task carries a batch: claims of one tick due in the same second (at most
HERALD_PUBLISH_BATCH). The batch's deliveries are sent at once on the worker process's publishing
threads (HERALD_PUBLISH_THREADS), and their database writes are batched without weakening any
guarantee:

1. Start, one transaction for the batch: the rows still under the claim are locked, and each
   one's claim token is swapped for the batch's own run token, its attempt counted, its lease
   renewed, and its first unsent part given an idempotency handle and marked in flight, in one
   UPDATE. Of two tasks for one claim (a broker redelivery, a duplicate enqueue) only one runs:
   the other finds its claims gone.
2. A part's handle is durable before its first network call. If a previous run left a part in
   flight, the outcome is unknown and the network reconciles through the handle before
   anything is re-sent.
3. The later parts of a thread (and media uploads) are checkpointed one by one as they go, each
   write conditional on the run token, so a retry resumes at the first unpublished part and a
   worker whose lease was taken over stops.
4. End, one transaction for the batch: the rows still under the run token are locked and moved
   through the state machine (published, retry later, failed) with their remote ids and errors.
   A row whose lease was taken over meanwhile is left to its new owner.
5. However an attempt ends, a DeliveryAttempt row records it, and the delivery carries a human
   readable error if it did not publish.

Between a network call and the batch's end the part stays marked in flight: a worker that dies
there leaves it to be reconciled through its handle, never re-sent blindly.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from . import events, leases, states
from .compose import parts_for_deliveries
from .models import AttemptOutcome, Delivery, DeliveryAttempt, DeliveryStatus
from .networks import network_for
from .networks.base import (
    ErrorCategory,
    Network,
    NetworkError,
    PartContent,
    PartContext,
    PublishedPart,
)
from .retry import backoff_seconds

logger = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another worker holds this delivery now; stop without touching it."""


def publish_delivery(delivery_id: int, *, claim_token: UUID) -> str:
    """Publish one claimed delivery: the attempt outcome, or "stale" if the claim is gone."""
    return publish_batch([delivery_id], claim_token=claim_token)[delivery_id]


def publish_batch(delivery_ids: list[int], *, claim_token: UUID) -> dict[int, str]:
    """Publish the deliveries of one claim. Returns each one's outcome: the attempt's, or
    "stale" (the claim is gone) or "released" (its channel was paused or disconnected)."""
    outcomes = dict.fromkeys(delivery_ids, "stale")
    deliveries = list(
        Delivery.objects.select_related("channel", "post").filter(
            pk__in=delivery_ids, status=DeliveryStatus.PUBLISHING, claim_token=claim_token
        )
    )
    inactive = [d.pk for d in deliveries if not d.channel.is_active]
    if inactive:
        # Paused or disconnected after the claim: handed back untouched; the tick claims them
        # again once the channel is active (or marks them missed).
        states.apply(
            Delivery.objects.filter(pk__in=inactive),
            "retry_later",
            under_claim=claim_token,
            claim_token=None,
            claimed_until=None,
        )
        outcomes.update(dict.fromkeys(inactive, "released"))
    deliveries = [d for d in deliveries if d.pk not in inactive]
    if not deliveries:
        return outcomes
    contents = parts_for_deliveries(deliveries)
    run_token = uuid4()
    runs = _start(deliveries, contents, claim_token, run_token)
    leases.hold(run_token)
    try:
        _send_all([run for run in runs if run.ending is None])  # else ended at the start
    finally:
        try:
            _end(runs, run_token)
        finally:
            leases.release(claim_token, run_token)
    outcomes.update((run.delivery.pk, run.outcome) for run in runs)
    return outcomes


def _start(
    deliveries: list[Delivery],
    contents: dict[int, list[PartContent]],
    claim_token: UUID,
    run_token: UUID,
) -> list[_Run]:
    """Take the deliveries still under `claim_token` over with `run_token`, in one UPDATE."""
    with transaction.atomic():
        locked = set(
            Delivery.objects.filter(
                pk__in=[d.pk for d in deliveries],
                status=DeliveryStatus.PUBLISHING,
                claim_token=claim_token,
            )
            .select_for_update()
            .values_list("pk", flat=True)
        )
        runs = [_Run(d, contents[d.pk], run_token) for d in deliveries if d.pk in locked]
        lease = timezone.now() + timedelta(seconds=settings.HERALD_LEASE_SECONDS)
        for run in runs:
            run.prepare(lease)
        Delivery.objects.update_each(
            [run.delivery for run in runs],
            ["claim_token", "claimed_until", "attempts", "part_states"],
        )
    return runs


def _end(runs: list[_Run], run_token: UUID) -> None:
    """Write every ended run's transition and attempt, in one transaction; then tell the world."""
    ended = [run for run in runs if run.ending is not None]
    published: list[Delivery] = []
    with transaction.atomic():
        ours = set(
            Delivery.objects.filter(
                pk__in=[run.delivery.pk for run in ended],
                status=DeliveryStatus.PUBLISHING,
                claim_token=run_token,
            )
            .select_for_update()
            .values_list("pk", flat=True)
        )
        moves = []
        for run in ended:
            if run.delivery.pk in ours:
                moves.append(run.move())
                published += [run.delivery] if run.outcome == AttemptOutcome.PUBLISHED else []
            else:
                run.lost()
        if moves:
            states.apply_each(Delivery.objects.filter(claim_token=run_token), moves)
        DeliveryAttempt.objects.bulk_create(run.attempt for run in runs if run.attempt)
        for run in runs:
            if run.after_commit is not None:
                transaction.on_commit(run.after_commit)
        if published:
            transaction.on_commit(lambda: events.deliveries_published(published))


def _send_all(runs: list[_Run]) -> None:
    """Send the runs at once, on this process's publishing threads (the task's own thread for
    a batch of one), and wait for all of them."""
    if len(runs) == 1:
        _send(runs[0])
    elif runs:
        for future in [_executor().submit(_send_on_pool, run) for run in runs]:
            future.result()


def _send(run: _Run) -> None:
    _wait_until_due(run.delivery)
    run.send()


def _send_on_pool(run: _Run) -> None:
    try:
        _send(run)
    finally:
        # Most sends touch no database (the batch writes for them); those that did (a thread's
        # later parts, media) close their connection, so the publishing threads do not add to
        # the connections a worker holds, nor keep one that a database restart killed.
        connections.close_all()


_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """This process's publishing threads (HERALD_PUBLISH_THREADS), made on first use (a forked
    child makes its own)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            threads = settings.HERALD_PUBLISH_THREADS
            _pool = (os.getpid(), ThreadPoolExecutor(threads, thread_name_prefix="herald-publish"))
        return _pool[1]


def _wait_until_due(delivery: Delivery) -> None:
    # Claims are made a few seconds ahead and enqueued with an ETA; a task that still arrives
    # early (clock skew between hosts) waits for its second instead of publishing early.
    if delivery.next_attempt_at:
        early = (delivery.next_attempt_at - timezone.now()).total_seconds()
        if 0 < early <= settings.HERALD_CLAIM_AHEAD + 1:
            time.sleep(early)


class _Run:
    """One attempt at one delivery, within a batch.

    `prepare` readies the start's write (the batch makes it), `send` publishes every part and
    decides how the attempt ends; the batch writes that ending (`move`) and the attempt record.
    """

    def __init__(self, delivery: Delivery, parts: list[PartContent], token: UUID) -> None:
        self.delivery = delivery
        self.parts = parts
        self.token = token  # the batch's run token, which the row holds once started
        self.started_at = timezone.now()
        self.part_index: int | None = None
        self.prepared_part: int | None = None  # in flight from the start's write
        self.pending: dict[str, Any] = {}
        self.network: Network = network_for(delivery.channel)
        # How the attempt ended, for the batch to write: transition name and changes.
        self.ending: tuple[str, dict[str, Any]] | None = None
        self.outcome = ""
        self.attempt: DeliveryAttempt | None = None
        self.after_commit: Callable[[], None] | None = None

    def prepare(self, lease: datetime) -> None:
        """The start, in memory: claim taken over, lease renewed, attempt counted, and the
        first unsent part's handle made and marked in flight (unless a previous run left it in
        flight: that one is reconciled first)."""
        delivery = self.delivery
        delivery.claim_token = self.token
        delivery.claimed_until = lease
        delivery.attempts += 1
        if delivery.attempts > settings.HERALD_MAX_ATTEMPTS + 2:
            # Repeated crashes without a recorded error (the worker keeps dying on this one).
            self.handle_error(
                NetworkError(
                    ErrorCategory.REJECTED,
                    "too_many_attempts",
                    f"Gave up after {delivery.attempts - 1} attempts that did not finish.",
                )
            )
            return
        part_states = delivery.part_states
        part_states.extend({} for _ in range(len(part_states), len(self.parts)))
        index = next((i for i, s in enumerate(part_states) if not s.get("remote_id")), None)
        if index is not None and not part_states[index].get("in_flight"):
            part_states[index].setdefault("handle", self.network.new_handle(delivery.pk, index))
            part_states[index]["in_flight"] = True
            self.prepared_part = index

    def send(self) -> None:
        """Publish every part; sets how the attempt ended."""
        self.started_at = timezone.now()
        try:
            self.publish_parts()
        except LeaseLost:
            self.lost()
            return
        except NetworkError as error:
            self.handle_error(error)
            return
        except Exception as exc:
            logger.exception("delivery %s: unexpected error", self.delivery.pk)
            unexpected = NetworkError(
                ErrorCategory.TRANSIENT,
                "internal_error",
                f"Herald hit an unexpected error ({type(exc).__name__}: {exc}); it will retry.",
                outcome_unknown=True,
            )
            self.handle_error(unexpected)
            return
        self.succeed()

    def publish_parts(self) -> None:
        part_states = self.delivery.part_states
        root: PublishedPart | None = None
        previous: PublishedPart | None = None
        for index, part in enumerate(self.parts):
            self.part_index = index
            state = part_states[index]
            if state.get("remote_id"):
                previous = PublishedPart.from_state(state)
            else:
                previous = self._publish_part(index, part, state, previous, root)
                if index < len(self.parts) - 1:
                    self.checkpoint()
            root = root or previous

    def _publish_part(
        self,
        index: int,
        part: Any,
        state: dict[str, Any],
        previous: PublishedPart | None,
        root: PublishedPart | None,
    ) -> PublishedPart:
        prepared = index == self.prepared_part  # handle and in-flight mark written at the start
        outcome_unknown = bool(state.get("in_flight")) and not prepared
        if not state.get("handle"):
            state["handle"] = self.network.new_handle(self.delivery.pk, index)
        context = PartContext(
            index=index,
            part=part,
            handle=state["handle"],
            options=self.delivery.post.options,
            previous=previous,
            root=root,
            checkpoint=self.checkpoint,
        )
        result = self.network.reconcile_part(context) if outcome_unknown else None
        if result is None:
            if not prepared:
                state["in_flight"] = True
                self.checkpoint()  # handle and in-flight mark are durable before the call
            try:
                result = self.network.publish_part(context)
            except NetworkError as error:
                # A clear "no" proves nothing about an earlier send whose outcome was unknown,
                # so the in-flight mark stays until a publish succeeds.
                state["in_flight"] = outcome_unknown or error.outcome_unknown
                raise
        state.update(
            remote_id=result.remote_id,
            url=result.url,
            extra=result.extra,
            in_flight=False,
            published_at=timezone.now().isoformat(),
        )
        return result

    def checkpoint(self) -> None:
        """Persist part states and renew the lease; raises LeaseLost if the claim was taken."""
        lease = timezone.now() + timedelta(seconds=settings.HERALD_LEASE_SECONDS)
        moved = Delivery.objects.filter(
            pk=self.delivery.pk, status=DeliveryStatus.PUBLISHING, claim_token=self.token
        ).update(claimed_until=lease, part_states=self.delivery.part_states, **self.pending)
        if not moved:
            raise LeaseLost()
        self.pending.clear()

    # -- endings ---------------------------------------------------------------------------------
    def _end(self, name: str, outcome: str, **changes: Any) -> None:
        """End the claim with a transition that also writes what is pending (by the batch)."""
        self.ending = (name, changes)
        self.outcome = outcome

    def move(self) -> tuple[Delivery, str, dict[str, Any]]:
        """The ending as a state machine move (the row is still ours)."""
        assert self.ending is not None
        name, changes = self.ending
        return (
            self.delivery,
            name,
            {
                "claim_token": None,
                "claimed_until": None,
                "part_states": self.delivery.part_states,
                **self.pending,
                **changes,
            },
        )

    def lost(self) -> None:
        """Another worker took the delivery over: nothing of this attempt is written but its
        record."""
        self.ending, self.after_commit = None, None
        self.outcome = AttemptOutcome.LEASE_LOST
        self.record(
            AttemptOutcome.LEASE_LOST, message="Another worker took over after the lease expired."
        )

    def succeed(self) -> None:
        now = timezone.now()
        self._end(
            "succeed",
            AttemptOutcome.PUBLISHED,
            published_at=now,
            last_error_code="",
            last_error="",
        )
        self.record(AttemptOutcome.PUBLISHED)

    def handle_error(self, error: NetworkError) -> None:
        """Reschedule or fail according to the error's category."""
        delivery, now = self.delivery, timezone.now()
        if error.category == ErrorCategory.AUTH:
            delivery.channel.mark_needs_reconnect(error.message)
            hours = settings.HERALD_CATCH_UP_WINDOW.total_seconds() / 3600
            message = (
                f"{error.message} Reconnect {delivery.channel.handle} under Channels; this post "
                f"is kept and goes out once the channel is connected again (if that is within "
                f"{hours:g} hours of its time; later, retry it by hand)."
            )
            return self._wait(error, now, AttemptOutcome.NEEDS_RECONNECT, message)
        if error.category == ErrorCategory.RATE_LIMITED:
            at = now + timedelta(seconds=error.retry_after or 60)
            message = error.message  # the retry time is shown from next_attempt_at, per reader
            return self._wait(error, at, AttemptOutcome.RATE_LIMITED, message)
        attempts, limit = delivery.attempts, settings.HERALD_MAX_ATTEMPTS
        if error.category == ErrorCategory.TRANSIENT and attempts < limit:
            delivery.failures += 1
            at = now + timedelta(seconds=error.retry_after or _backoff(delivery.failures))
            message = f"{error.message} Attempt {attempts} of {limit}."
            return self._retry_later(
                error, at, AttemptOutcome.RETRY, message, failures=delivery.failures
            )
        return self._fail(error)

    def _wait(self, error: NetworkError, at: datetime, outcome: str, message: str) -> None:
        """Retry later without spending an attempt: waiting for a rate limit or a reconnect
        is not a failure, and must not use up the transient-error budget."""
        self.delivery.attempts -= 1
        self.pending["attempts"] = self.delivery.attempts
        self._retry_later(error, at, outcome, message)

    def _retry_later(
        self, error: NetworkError, at: datetime, outcome: str, message: str, **more: Any
    ) -> None:
        changes = {"next_attempt_at": at, "last_error_code": error.code, "last_error": message}
        self._end("retry_later", outcome, **changes, **more)
        self.record(outcome, error=error, message=message)

    def _fail(self, error: NetworkError) -> None:
        delivery = self.delivery
        message = error.message
        if error.category == ErrorCategory.TRANSIENT:
            message = f"{message} Gave up after {delivery.attempts} attempts; retry when the network is back."
        self._end("fail", AttemptOutcome.FAILED, last_error_code=error.code, last_error=message)
        self.record(AttemptOutcome.FAILED, error=error, message=message)
        self.after_commit = lambda: events.delivery_failed(delivery)

    def record(self, outcome: str, *, error: NetworkError | None = None, message: str = "") -> None:
        self.attempt = DeliveryAttempt(
            delivery=self.delivery,
            started_at=self.started_at,
            finished_at=timezone.now(),
            outcome=outcome,
            part_index=self.part_index,
            http_status=error.http_status if error else None,
            error_code=error.code if error else "",
            message=message,
            excerpt=error.excerpt if error else "",
        )


def _backoff(attempts: int) -> float:
    return backoff_seconds(
        attempts, base=settings.HERALD_BACKOFF_BASE, cap=settings.HERALD_BACKOFF_MAX, jitter=0.2
    )
