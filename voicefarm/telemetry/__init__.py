"""The farm's numbers, in one home: what each process counts as it records transitions
(`counters`), the endpoint a worker serves them from (`exporter`), the API's gauges (`metrics`)
and the rates read from the database and the broker (`stats`).

May import: settings, errors, engines, store, dispatch, fleet, library.
"""
