"""Benchmark texts, and the length in XTTS audio codes that speech of each one takes.

Random weights never choose the stop code, so a benchmark fixes each text's length instead: the
codes its speech would take, not one count for every phrase. Serving never does this.
"""

from __future__ import annotations

import os

# XTTS v2's GPT makes about 21.5 audio codes per second of speech (its codes are 1024 samples
# at 22.05 kHz).
CODES_PER_SECOND = 21.5
# A conversational pace. Piper's en_US-joe-medium reads TEXTS at 17.6 characters a second; the
# slower pace errs towards more codes, so more work per text.
CHARACTERS_PER_SECOND = 14.0

# A CPU run of the GPU report on tiny models checks its paths, not costs: shorter lengths.
LENGTH_SCALE = "VOICEFARM_BENCH_LENGTH_SCALE"

# One to four sentences each, as an agent's replies and a phone line's prompts are.
TEXTS = [
    "Your order has shipped and will arrive on Tuesday.",
    "Please hold while we connect you to the next available agent.",
    "The meeting has been moved to three o'clock. Bring the quarterly figures with you.",
    "Thank you for calling. Your account balance is forty two dollars and ten cents.",
    "Turn left at the next light. Then keep right, and the station is on your left.",
    "I found three flights to Lisbon. The earliest leaves at six. The cheapest one stops in Madrid.",
    "Your package was left at the front door. A photo is in the app. Let us know if it is not there.",
    "The storm should pass by evening. Winds will ease overnight. Tomorrow looks clear and cold.",
    "Good morning. You have two new messages. The first is from your dentist. The second is from Sam.",
    "We could not charge your card. Please check the expiry date. Then try again, or use another card.",
    "The library closes early on Friday. Books due that day can be returned on Monday. No fines apply.",
    "Step one, unplug the router. Step two, wait ten seconds. Step three, plug it back in. "
    "Step four, wait for the green light.",
]


def speech_seconds(text: str) -> float:
    """How long speech of `text` lasts at the benchmark's pace."""
    return len(text) / CHARACTERS_PER_SECOND


def codes_for(text: str) -> int:
    """The audio codes XTTS generates for speech of `text`: the fixed length of its benchmark run."""
    scale = float(os.environ.get(LENGTH_SCALE, "1"))
    return max(1, round(speech_seconds(text) * CODES_PER_SECOND * scale))
