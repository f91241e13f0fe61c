"""What a waiting caller hears at each position announcement, as prompt names (sans-IO).

A channel with an ``announce`` method of its own (chat says it in text) does not need this; a voice
channel that can only play prompts (SIP, analog lines) is given these names in order. The names are
fixed so that an installation records them once per language (``<prompts>/<language>/<name>.wav``);
a missing file is skipped, so a site without, say, ``number-12`` still says the rest.
"""

from __future__ import annotations

import math

__all__ = ["ANNOUNCEMENT_PROMPTS", "MAX_SAID_NUMBER", "announcement_prompts"]

#: Every fixed prompt name an announcement may use; numbers are ``number-1`` .. ``number-99``.
ANNOUNCEMENT_PROMPTS = ("queue-you-are-next", "queue-you-are-caller", "queue-estimated-wait", "queue-minutes",
                        "queue-less-than-a-minute")

#: Positions and minutes above this are said as "more than" this number (nobody records 500 numbers).
MAX_SAID_NUMBER = 99


def announcement_prompts(position: int, wait_low: float | None, wait_high: float | None, *,
                         say_position: bool = True) -> list[str]:
    """``position`` (1 = next) and the estimated wait range in seconds (None: no estimate) as prompts.

    Position 1: ``queue-you-are-next``; otherwise ``queue-you-are-caller number-N``. Then, with an
    estimate: ``queue-estimated-wait`` and ``queue-less-than-a-minute`` or ``number-M queue-minutes``
    (M = the upper end in whole minutes, rounded up: promising less than we expect annoys people more).
    """
    names: list[str] = []
    if say_position and position >= 1:
        if position == 1:
            names.append("queue-you-are-next")
        else:
            names += ["queue-you-are-caller", f"number-{min(position, MAX_SAID_NUMBER)}"]
    if wait_high is not None and math.isfinite(wait_high) and wait_high > 0:
        names.append("queue-estimated-wait")
        if wait_high < 60:
            names.append("queue-less-than-a-minute")
        else:
            names += [f"number-{min(math.ceil(wait_high / 60), MAX_SAID_NUMBER)}", "queue-minutes"]
    return names
