"""What runs inside a worker: the Celery tasks of a job (`tasks`) and a document (`documents`), the
synthesis itself (`run`), the pipelined engine slot (`slots`) and the webhook sender (`webhooks`).

May import: everything below the API; never the API, the CLI or ops.
"""
