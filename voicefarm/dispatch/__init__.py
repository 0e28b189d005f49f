"""Getting work to workers: the Celery app made from settings and the functions that send
messages (`app`), every task and queue name (`names`), the broker kinds side by side (`brokers`)
and a tenant's fair priority (`priorities`).

May import: settings, errors, store.
"""
