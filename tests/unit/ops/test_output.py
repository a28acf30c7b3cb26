"""How the operator tools write an age: the terminal's terse, the page's spaced."""

import pytest

from publisher.ops.output import age


@pytest.mark.parametrize(("seconds", "terse", "spaced"), [
    (42.9, "42s", "42 s"),
    (119, "119s", "119 s"),
    (120, "2m", "2 min"),
    (4000, "66m", "66 min"),
    (7500, "2h05m", "2 h 05 min"),
    (90061, "25h01m", "25 h 01 min"),
])
def test_an_age_is_seconds_then_minutes_then_hours_and_minutes(seconds, terse, spaced):
    assert age(seconds) == terse
    assert age(seconds, spaced=True) == spaced
