"""What the farm keeps: the tables and their sessions (`models`, `db`), object storage for audio
(`objects`: an S3 server, or a local folder) and the shared Redis clients, which outlive a
restart (`redis`).

May import: settings, errors. Nothing here knows a job's rules.
"""
