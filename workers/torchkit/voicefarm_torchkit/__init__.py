"""What the torch engines (XTTS, StyleTTS2) share: device choice, bf16 autocast with fp32
islands inside it, and the per-voice conditioning cache.

One package installed into both torch worker environments (workers/*/setup.sh), so neither
engine carries a copy. torch is imported inside functions only: an engine's module imports,
and reads its capabilities, without it.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

T = TypeVar("T")


class BytesStore(Protocol):
    """Persistent bytes by key, shared by workers, so a voice's conditioning outlives a process."""

    def get(self, key: str) -> bytes | None: ...
    def put(self, key: str, data: bytes) -> None: ...


class DictStore:
    """A BytesStore over a dict, in this process only: for tests and benchmarks."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def put(self, key: str, data: bytes) -> None:
        self.data[key] = data


class VoiceCache(Generic[T]):
    """A voice's conditioning by reference key: a bounded in-process LRU in front of an
    optional persistent store, so each voice is computed once across workers.

    `computed` counts the computations, not the lookups found cached.
    """

    def __init__(
        self,
        size: int,
        store: BytesStore | None,
        serialize: Callable[[T], bytes],
        deserialize: Callable[[bytes], T],
        what: str,
    ) -> None:
        """`what` names the conditioning in log lines ("xtts latents")."""
        self._size = size
        self._store = store
        self._serialize = serialize
        self._deserialize = deserialize
        self._what = what
        self._lru: OrderedDict[str, T] = OrderedDict()
        self.computed = 0

    def __len__(self) -> int:
        return len(self._lru)

    def get(self, key: str | None, compute: Callable[[], T], *, persist: bool = True) -> T:
        """The conditioning for `key`: from the LRU, else the store (unless not `persist`), else
        `compute()`; a None key is computed every time, as nothing names the voice."""
        if key is None:
            self.computed += 1
            return compute()
        if key in self._lru:
            self._lru.move_to_end(key)
            return self._lru[key]
        value = self._load(key) if persist else None
        if value is None:
            value = compute()
            self.computed += 1
            log.info("%s: computed %s", self._what, key)
            if persist:
                self._save(key, value)
        self._lru[key] = value
        while len(self._lru) > self._size:
            self._lru.popitem(last=False)
        return value

    def _load(self, key: str) -> T | None:
        if self._store is None:
            return None
        try:
            data = self._store.get(key)
        except Exception:
            # The store only saves work; a job still succeeds by recomputing.
            log.warning("%s: store read failed; recomputing", self._what, exc_info=True)
            return None
        return None if data is None else self._deserialize(data)

    def _save(self, key: str, value: T) -> None:
        if self._store is None:
            return
        data = self._serialize(value)
        try:
            self._store.put(key, data)
        except Exception:
            log.warning("%s: store write failed", self._what, exc_info=True)


def pick_device(requested: str | None, engine: str) -> torch.device:
    """`requested`, else CUDA when present; on CUDA, TF32 is enabled for fp32 matmuls and
    convolutions, for tensor-core speed."""
    import torch

    device = torch.device(requested or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    elif not torch.cuda.is_available():
        log.warning("no GPU: %s runs on CPU", engine)
    return device


def autocast_device(device: torch.device, bf16: bool | None) -> str | None:
    """The device type bf16 autocast applies to, or None for fp32; `bf16` None means CUDA only."""
    enabled = bf16 if bf16 is not None else device.type == "cuda"
    return device.type if enabled else None


def autocast(device_type: str | None) -> contextlib.AbstractContextManager[object]:
    """bf16 autocast on `device_type`; no autocast when it is None."""
    import torch

    if device_type is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch.bfloat16)


def keep_fp32(module: torch.nn.Module, device_type: str) -> None:
    """Make `module` run in fp32, on fp32 inputs, inside an enclosing autocast: for the parts
    where bf16 does not hold, such as vocoders and recurrent layers."""
    import torch
    from torch.nn.utils.rnn import PackedSequence

    forward: Callable[..., Any] = module.forward

    def cast(x: Any) -> Any:
        if isinstance(x, PackedSequence) or (isinstance(x, torch.Tensor) and x.is_floating_point()):
            return x.float()
        return x

    def fp32_forward(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast(device_type, enabled=False):
            return forward(*map(cast, args), **{k: cast(v) for k, v in kwargs.items()})

    module.forward = fp32_forward  # type: ignore[method-assign]
