"""Publishing one claimed delivery, part by part, exactly once.

1. The publish re-checks its claim (status `publishing` and the claim token it was given), and
   its first write swaps that token for one of its own: of two tasks for one claim (a broker
   redelivery, a duplicate enqueue) only one runs, the other finds its claim gone.
2. Each part gets an idempotency handle, persisted before the first network call.
3. Before a part is sent it is marked in flight; if a previous run left it in flight, the outcome
   is unknown and the network reconciles through the handle before anything is re-sent.
4. Each part's remote id and URL are persisted the moment they exist, so a retry resumes at the
   first unpublished part.
5. Every write is conditional on the claim token: a worker whose lease was taken over stops.
6. However the attempt ends, a DeliveryAttempt row records it and the delivery carries a human
   readable error if it did not publish.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import events, leases, states
from .compose import parts_for
from .models import AttemptOutcome, Delivery, DeliveryAttempt, DeliveryStatus
from .networks import network_for
from .networks.base import ErrorCategory, Network, NetworkError, PartContext, PublishedPart
from .retry import backoff_seconds

logger = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another worker holds this delivery now; stop without touching it."""


def publish_delivery(delivery_id: int, *, claim_token: UUID) -> str:
    """Publish a claimed delivery. Returns the attempt outcome, or "stale" if the claim is gone."""
    delivery = (
        Delivery.objects.select_related("channel", "post")
        .filter(pk=delivery_id, status=DeliveryStatus.PUBLISHING, claim_token=claim_token)
        .first()
    )
    if delivery is None:
        return "stale"
    if not delivery.channel.is_active:
        # Paused or disconnected after the claim: hand the delivery back untouched; the tick
        # claims it again once the channel is active (or marks it missed).
        states.apply(
            Delivery.objects.filter(pk=delivery.pk),
            "retry_later",
            under_claim=claim_token,
            claim_token=None,
            claimed_until=None,
        )
        return "released"
    _wait_until_due(delivery)
    run = _Run(delivery, claim_token)
    leases.hold(delivery_id, run.run_token)
    try:
        return run.run()
    finally:
        leases.release(delivery_id, claim_token, run.run_token)


def _wait_until_due(delivery: Delivery) -> None:
    # Claims are made a few seconds ahead and enqueued with an ETA; a task that still arrives
    # early (clock skew between hosts) waits for its second instead of publishing early.
    if delivery.next_attempt_at:
        early = (delivery.next_attempt_at - timezone.now()).total_seconds()
        if 0 < early <= settings.HERALD_CLAIM_AHEAD + 1:
            time.sleep(early)


class _Run:
    """One attempt at one delivery.

    Writes are batched without weakening the guarantees: the attempt count, a part's new handle
    and its in-flight mark go out in the one conditional UPDATE made before the network call,
    and the last part's remote id is written by the transition that ends the claim.
    """

    def __init__(self, delivery: Delivery, token: UUID) -> None:
        self.delivery = delivery
        self.token = token  # the token the row holds: the claim's, then this run's own
        self.run_token = uuid4()
        self.started_at = timezone.now()
        self.part_index: int | None = None
        self.pending: dict[str, Any] = {}
        self.network: Network = network_for(delivery.channel)

    def run(self) -> str:
        """Publish every part and end the claim. Returns the attempt outcome."""
        try:
            self.start()
            self.publish_parts()
        except LeaseLost:
            if self.token != self.run_token:
                return "stale"  # another task for this claim got there first: not an attempt
            self.record(
                AttemptOutcome.LEASE_LOST,
                message="Another worker took over after the lease expired.",
            )
            return AttemptOutcome.LEASE_LOST
        except NetworkError as error:
            return self.handle_error(error)
        except Exception as exc:
            logger.exception("delivery %s: unexpected error", self.delivery.pk)
            unexpected = NetworkError(
                ErrorCategory.TRANSIENT,
                "internal_error",
                f"Herald hit an unexpected error ({type(exc).__name__}: {exc}); it will retry.",
                outcome_unknown=True,
            )
            return self.handle_error(unexpected)
        return self.succeed()

    def start(self) -> None:
        delivery = self.delivery
        delivery.attempts += 1
        self.pending["attempts"] = delivery.attempts
        if delivery.attempts > settings.HERALD_MAX_ATTEMPTS + 2:
            # Repeated crashes without a recorded error (the worker keeps dying on this one).
            raise NetworkError(
                ErrorCategory.REJECTED,
                "too_many_attempts",
                f"Gave up after {delivery.attempts - 1} attempts that did not finish.",
            )

    def publish_parts(self) -> None:
        parts = parts_for(self.delivery)
        part_states = self.delivery.part_states
        part_states.extend({} for _ in range(len(part_states), len(parts)))
        root: PublishedPart | None = None
        previous: PublishedPart | None = None
        for index, part in enumerate(parts):
            self.part_index = index
            state = part_states[index]
            if state.get("remote_id"):
                previous = PublishedPart.from_state(state)
            else:
                previous = self._publish_part(index, part, state, previous, root)
                if index < len(parts) - 1:
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
        outcome_unknown = bool(state.get("in_flight"))
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
        """Persist part states, take the claim over and renew the lease; raises LeaseLost if the
        claim was taken."""
        lease = timezone.now() + timedelta(seconds=settings.HERALD_LEASE_SECONDS)
        moved = Delivery.objects.filter(
            pk=self.delivery.pk, status=DeliveryStatus.PUBLISHING, claim_token=self.token
        ).update(
            claim_token=self.run_token,
            claimed_until=lease,
            part_states=self.delivery.part_states,
            **self.pending,
        )
        if not moved:
            raise LeaseLost()
        self.token = self.run_token
        self.pending.clear()

    # -- endings ---------------------------------------------------------------------------------
    def _end(self, name: str, **changes: Any) -> bool:
        """End the claim with a transition that also writes what is pending. False if lost."""
        try:
            states.transition(
                self.delivery,
                name,
                under_claim=self.token,
                claim_token=None,
                claimed_until=None,
                part_states=self.delivery.part_states,
                **self.pending,
                **changes,
            )
        except states.IllegalTransition:
            return False
        self.pending.clear()
        return True

    def succeed(self) -> str:
        delivery = self.delivery
        if not self._end("succeed", published_at=timezone.now(), last_error_code="", last_error=""):
            return AttemptOutcome.LEASE_LOST
        self.record(AttemptOutcome.PUBLISHED)
        transaction.on_commit(lambda: events.delivery_published(delivery))
        return AttemptOutcome.PUBLISHED

    def handle_error(self, error: NetworkError) -> str:
        """Reschedule or fail according to the error's category. Returns the outcome."""
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
            at = now + timedelta(seconds=error.retry_after or _backoff(attempts))
            message = f"{error.message} Attempt {attempts} of {limit}."
            return self._retry_later(error, at, AttemptOutcome.RETRY, message)
        return self._fail(error)

    def _wait(self, error: NetworkError, at: datetime, outcome: str, message: str) -> str:
        """Retry later without spending an attempt: waiting for a rate limit or a reconnect
        is not a failure, and must not use up the transient-error budget."""
        self.delivery.attempts -= 1
        self.pending["attempts"] = self.delivery.attempts
        return self._retry_later(error, at, outcome, message)

    def _retry_later(self, error: NetworkError, at: datetime, outcome: str, message: str) -> str:
        changes = {"next_attempt_at": at, "last_error_code": error.code, "last_error": message}
        if not self._end("retry_later", **changes):
            return AttemptOutcome.LEASE_LOST
        self.record(outcome, error=error, message=message)
        return outcome

    def _fail(self, error: NetworkError) -> str:
        delivery = self.delivery
        message = error.message
        if error.category == ErrorCategory.TRANSIENT:
            message = f"{message} Gave up after {delivery.attempts} attempts; retry when the network is back."
        if not self._end("fail", last_error_code=error.code, last_error=message):
            return AttemptOutcome.LEASE_LOST
        self.record(AttemptOutcome.FAILED, error=error, message=message)
        transaction.on_commit(lambda: events.delivery_failed(delivery))
        return AttemptOutcome.FAILED

    def record(self, outcome: str, *, error: NetworkError | None = None, message: str = "") -> None:
        DeliveryAttempt.objects.create(
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
