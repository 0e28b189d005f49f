"""A job's whole life, in modules that read top to bottom:

- `submit`: validate and key a request, answer from the cache, or record it (once: identical
  requests follow one synthesis) and send it to its engine's queue; batches too;
- `lifecycle`: begin, reroute, finish and settle, each one transaction;
- `chain`: the typed links of a job's chain; `keys`: what makes requests the same speech;
- `batches`: a batch is done when none of its jobs is in flight;
- `segments` and `document`: a long text split into segments, and its fan-out, segments and join.

`voicefarm.worker.tasks` is the Celery adapter that calls the lifecycle; `voicefarm.worker` does the
synthesis itself.
"""
