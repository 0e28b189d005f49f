"""Sound, apart from any engine: codecs (`codec`), the live stream encoder (`encoder`), joining a
document's segments (`join`), speech regions (`vad`), the offline recogniser (`asr`), word
timestamps (`alignment`, `captions`), the quality gate (`quality`) and reference samples for
cloning (`reference`).

May import: settings, errors, engines (the `Audio` and `Word` types).
"""
