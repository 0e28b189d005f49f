"""The workers as the farm sees them: heartbeats and what each advertises (`heartbeat`), the
catalog of engines and voices built from that (`catalog`), the circuit breaker (`breaker`) and a
worker's start-up probe (`selftest`).

May import: settings, errors, engines, audio, store.
"""
