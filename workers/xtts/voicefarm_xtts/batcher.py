"""One thread that decodes every job's GPT steps together (voicefarm_xtts.batching), for callers
on any number of other threads.

A caller hands in a sequence and reads back its codes and latents as the steps make them; it
turns them into audio itself (XTTS's vocoder, on the caller's thread), so the GPT never waits for
anyone's vocoder. A sequence joins at the next step while fewer than `size` are decoding, and
waits its turn otherwise. What goes wrong stays with whom it concerns: a prompt that fails to
join fails its own caller only; a failed step fails the sequences of that step, and the thread
goes on with the next ones. A caller that stops reading (its job failed, timed out or was
cancelled) takes its sequence out of the batch at the next step.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator

import torch

from voicefarm_xtts.batching import Decoder, Sequence

log = logging.getLogger(__name__)

_END = object()


class Batcher:
    """Up to `size` sequences decoded at once by `decoder`, on a thread of its own; `autocast`
    is entered on that thread (autocast is per thread)."""

    def __init__(
        self,
        decoder: Decoder,
        size: int,
        autocast: Callable[[], contextlib.AbstractContextManager[object]] = contextlib.nullcontext,
    ) -> None:
        if size < 1:
            raise ValueError(f"a batch holds at least one sequence, not {size}")
        self.decoder = decoder
        self.size = size
        self._autocast = autocast
        self._waiting: queue.Queue[Sequence] = queue.Queue()
        self._readers: dict[Sequence, queue.Queue[object]] = {}
        self._left: set[Sequence] = set()  # sequences whose callers stopped reading
        self._lock = threading.Lock()  # guards _left and _thread, which callers touch too
        self._thread: threading.Thread | None = None

    def codes(self, seq: Sequence) -> Iterator[tuple[int, torch.Tensor]]:
        """The sequence's codes and latents, one pair per step, until it stops. Closing the
        iterator early takes the sequence out of the batch."""
        reader: queue.Queue[object] = queue.Queue()
        with self._lock:
            self._readers[seq] = reader
            self._waiting.put(seq)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="xtts-batcher", daemon=True)
                self._thread.start()
        try:
            while (item := reader.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            if not seq.done:
                with self._lock:
                    self._left.add(seq)

    def _run(self) -> None:
        """Decode while anything waits or decodes; then end, so an idle batcher holds no thread
        (the next sequence starts another)."""
        try:
            with self._autocast():
                while True:
                    with self._lock:
                        if not self.decoder.active and self._waiting.empty():
                            self._thread = None
                            self._left.clear()  # callers that left after their sequence ended
                            return
                    self._admit()
                    self._leave()
                    if self.decoder.active:
                        self._step()
        except Exception as e:  # outside any one prompt or step: nobody may wait on a dead thread
            log.exception("xtts batcher: stopped")
            with self._lock:
                everyone = list(self.decoder.active)
                while not self._waiting.empty():
                    everyone.append(self._waiting.get_nowait())
                self.decoder.reset()
                self._left.clear()
                self._thread = None  # the next caller starts afresh
            self._fail(everyone, e)

    def _admit(self) -> None:
        """Waiting sequences join while there is room."""
        while len(self.decoder.active) < self.size:
            try:
                seq = self._waiting.get_nowait()
            except queue.Empty:
                return
            with self._lock:
                if seq in self._left:  # its caller left before it joined
                    self._left.discard(seq)
                    self._readers.pop(seq, None)
                    continue
            try:
                self.decoder.join(seq)
            except Exception as e:  # its own prompt: no one else's concern
                self._fail([seq], e)
                continue
            self._publish([seq])

    def _leave(self) -> None:
        """Decoding sequences whose callers left go; waiting ones are dropped as they come up."""
        with self._lock:
            left = {seq for seq in self._left if seq in self.decoder.active}
            self._left -= left
        if left:
            self.decoder.leave(left)
            for seq in left:
                self._readers.pop(seq, None)

    def _step(self) -> None:
        stepping = list(self.decoder.active)
        try:
            self.decoder.step()
        except Exception as e:
            log.exception("xtts batcher: a step of %d sequences failed", len(stepping))
            self.decoder.leave(stepping)
            self._fail(stepping, e)
            return
        self._publish(stepping)

    def _publish(self, seqs: list[Sequence]) -> None:
        for seq in seqs:
            reader = self._readers.get(seq)
            if reader is None:
                continue
            reader.put((seq.codes[-1], seq.latents[-1]))
            if seq.done:
                reader.put(_END)
                self._readers.pop(seq, None)

    def _fail(self, seqs: list[Sequence], error: Exception) -> None:
        for seq in seqs:
            seq.done = True
            reader = self._readers.pop(seq, None)
            if reader is not None:
                reader.put(error)
