"""The signals through which lower layers hand work upward, so imports point one way.

Networks and workflow modules send these; only `events` and `tasks` receive them, and
`SchedulerConfig.ready` imports both so the receivers are connected in every process. The
import direction this keeps: tasks -> workflows (compose, dispatch, publishing, channels,
events, webhooks) -> networks -> models (checked by `lint-imports`, contracts in pyproject.toml).
"""

from django.dispatch import Signal

# A channel's credentials stopped working (sent after the commit that flagged it): `channel`.
channel_needs_reconnect = Signal()

# Webhook deliveries were logged and are due now (sent after their commit): `ids`.
webhook_deliveries_logged = Signal()
