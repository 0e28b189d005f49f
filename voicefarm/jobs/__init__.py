"""A job's whole life, in modules that read top to bottom:

- `submit`: the one path from a parsed request (a job, a batch, OpenAI's speech) to its cached
  audio, its job or its batch; `plans` validates and keys a request, `recording` records it once
  per content key (identical requests follow one synthesis) and sends it;
- `lifecycle`: begin, reroute, finish and settle, each one transaction; `cancel`: a job or a
  batch its owner no longer wants; `keys`: what makes
  requests the same speech; `batches`: a batch is done when none of its jobs is in flight;
- `notify`: a finished job's or batch's callback, announced once its transaction commits;
  `payloads`: how a job or batch looks to clients and webhooks;
- `feeds` and `relay`: a job's live audio, and how a listener follows it across attempts;
- `segments` and `document`: a long text split into segments, and its fan-out, segments and join.

`voicefarm.worker.tasks` is the Celery adapter that calls the lifecycle; `voicefarm.worker.run`
does the synthesis itself.

May import: every package below it (telemetry, tenancy, fleet, library, dispatch, audio, store,
engines); never the API, the worker, ops or the CLI.
"""
