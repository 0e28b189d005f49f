"""`make bench`: the farm's own cost per job against Piper in-process (bench.cost: throughput,
cache-hit submit, submit to start, end to end minus synthesis, two workers against one, three
times over); then fair admission under a flood (bench.fairness), recovery from a dead worker
(bench.recovery), admission's active-jobs count with a million finished jobs (bench.admission),
the time to a stream's first audio (bench.streaming), word-timestamp accuracy at known sentence
boundaries (bench.timestamps) and a long document over one and two workers (bench.longform).
Each prints its targets beside what it measured.
"""

from __future__ import annotations

from bench import admission, cost, fairness, longform, recovery, streaming, timestamps


def main() -> None:
    cost.main()
    fairness.main()
    recovery.main()
    admission.main()
    streaming.main()
    timestamps.main()
    longform.main()


if __name__ == "__main__":
    main()
