"""The HTTP API: `app` (the factory, and the one map from the error tree to HTTP statuses),
`deps` (the caller, the session), one router a domain, each making one domain call a request,
`contract` (the OpenAPI schema with every limit the API enforces) and `console` (the browser
console's files and configuration).

May import: jobs and everything below it; never the worker, ops or the CLI.
"""
