"""Editing a weekly schedule: add or remove a time on a day, copy a day to others."""

from __future__ import annotations

import pytest

from scheduler.queue import QueueError, with_day_copied, with_time

MONDAY = {"mon": ["09:00", "13:30"]}


def test_adding_and_removing_times_keeps_days_sorted_and_unique():
    schedule = with_time(MONDAY, "mon", "07:15", present=True)
    schedule = with_time(schedule, "mon", "09:00", present=True)
    schedule = with_time(schedule, "wed", "18:00", present=True)

    assert schedule == {"mon": ["07:15", "09:00", "13:30"], "wed": ["18:00"]}
    assert with_time(schedule, "wed", "18:00", present=False) == {
        "mon": ["07:15", "09:00", "13:30"]
    }


def test_copying_a_day_replaces_the_targets_times():
    schedule = with_day_copied({**MONDAY, "tue": ["20:00"]}, "mon", ["tue", "fri"])

    assert schedule == {
        "mon": ["09:00", "13:30"],
        "tue": ["09:00", "13:30"],
        "fri": ["09:00", "13:30"],
    }
    assert with_day_copied(schedule, "sun", ["mon"]) == {
        "tue": ["09:00", "13:30"],
        "fri": ["09:00", "13:30"],
    }


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: with_time(MONDAY, "mon", "9am", present=True), "not a time like 09:00"),
        (lambda: with_time(MONDAY, "someday", "09:00", present=True), "not a weekday"),
        (lambda: with_day_copied(MONDAY, "monday", ["tue"]), "not a weekday"),
        (lambda: with_day_copied(MONDAY, "mon", ["xmas"]), "not a weekday"),
    ],
)
def test_bad_days_and_times_are_refused_with_a_reason(call, message):
    with pytest.raises(QueueError, match=message):
        call()
