"""Audio the farm already has: the URL cache (`cache`), stored renditions and masters
(`renditions`), cloned voices (`voices`), word timestamps (`timestamps`) and what is forgotten
when (`retention`).

May import: settings, errors, engines, audio, store, dispatch.
"""
