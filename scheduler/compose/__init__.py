"""Posting rules shared by the API and the pages: create, change, time, cancel, retry, share.

`create` saves new posts, `update` changes saved ones, `actions` acts on them, `when` parses
the time choice once, `common` holds the inputs, errors and validation they all use.
"""

from .actions import cancel_post, duplicate_post, retry_delivery, share_now
from .common import (
    CHANGEABLE,
    QUEUE_FIRST,
    QUEUE_LAST,
    ComposeError,
    PartInput,
    PostNotEditable,
    form_ids,
    parts_for,
    parts_for_deliveries,
    parts_for_post,
    validate_for_channels,
)
from .create import create_post
from .drafts import save_draft
from .update import UpdateResult, update_post, what_can_change, why_unchangeable
from .when import PAST_TOLERANCE, WHEN_CHOICES, parse_local, timing

__all__ = [
    "CHANGEABLE",
    "PAST_TOLERANCE",
    "QUEUE_FIRST",
    "QUEUE_LAST",
    "WHEN_CHOICES",
    "ComposeError",
    "PartInput",
    "PostNotEditable",
    "UpdateResult",
    "cancel_post",
    "create_post",
    "duplicate_post",
    "form_ids",
    "parse_local",
    "parts_for",
    "parts_for_deliveries",
    "parts_for_post",
    "retry_delivery",
    "save_draft",
    "share_now",
    "timing",
    "update_post",
    "validate_for_channels",
    "what_can_change",
    "why_unchangeable",
]
