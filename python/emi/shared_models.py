# SPDX-License-Identifier: LGPL-2.1-or-later
"""emi.shared_model(): one loaded model per key in the process, called in batches by every stream
that uses it.

Every empycustom element gets its own module object, so N streams of an app running one program
would load its model N times and call it with one stream's frames at a time. Programs (and
emdetect/emclassify's sessions) ask for the model here instead:

    import emi

    def start(options):
        global model
        model = emi.shared_model(("squeezenet1_1", weights_path, "cpu"), lambda: load(weights_path))

    def process_ip(io_buffer, in_meta):
        scores = model(batch)     # batch: a tensor (first dimension: items) or a list of items

The loader runs once per key in the process (load_count(key) says how often it ran: 1). A call
queues its items and waits; the first waiting caller gathers what is queued until
`max_batch_size` items are there or `max_batch_delay_ms` has passed since the oldest request came,
runs the model once on all of it, and hands each caller the outputs of its own items, in its
order. With a delay of 0 (the default) nobody waits for company: requests that come while the
model is busy are run together next, so one stream runs as fast as alone and several share calls.

Inputs are torch tensors, numpy arrays (ONNX models) or lists of items. Outputs are split along
the first dimension: a tensor or numpy array, a list (torchvision detectors: a dict per image), a
dict of those, or a tuple of those. Inputs of different shapes, types or devices are not batched
together. When a batch of several requests fails, each is run again alone, so one bad input fails
its own caller only. Inside `without_delay()` (a model's dry run at start) a call runs alone as
soon as the model is free, neither waiting for company nor joining a batch.

A model object is called by one thread at a time, so a model that is not thread-safe (an OpenCV
net) can be shared. Where one call can't use the machine's cores by itself (a model of a fixed
batch of 1, or one whose batches cost as much per item as single items), `max_concurrent` lets up
to that many batches run at once, each on a replica: `replicate(model)` makes one (a copy of the
loaded model, not a new load) the first time every replica made so far is busy, so one stream
never makes a second one. Replicas made: `replicas`.
"""

import collections
import contextlib
import os
import threading
import time

import numpy
import torch

_registry_lock = threading.Lock()
_models = {}              # key → SharedModel
_loaded = {}              # key → whatever the loader returned (shared_load)
_load_counts = collections.Counter()
_key_locks = collections.defaultdict(threading.Lock)
_local = threading.local()  # .urgent: without_delay() is on in this thread


def shared_load(key, loader):
    """loader() once per key in the process; every later call with the key gets the same object.
    Loads of different keys run at the same time; a loader that raises is tried again next call."""
    with _registry_lock:
        key_lock = _key_locks[key]
    with key_lock:
        if key not in _loaded:
            _load_counts[key] += 1
            _loaded[key] = loader()
        return _loaded[key]


def file_identity(path):
    """What a key should hold for a model file: (real path, mtime, size) of a file that is there,
    so a rewritten file is loaded again; the value itself otherwise (a model name, None)."""
    if not path or not isinstance(path, str) or not os.path.isfile(path):
        return path
    status = os.stat(path)
    return (os.path.realpath(path), status.st_mtime_ns, status.st_size)


def load_count(key):
    """How many times the loader of `key` ran in this process."""
    return _load_counts[key]


def shared_model(key, loader, max_batch_size=8, max_batch_delay_ms=0.0, max_concurrent=1, replicate=None):
    """The process's SharedModel for `key`: the model loader() returns (a callable taking a batch),
    loaded once, called in batches (up to `max_concurrent` at once on replicas made by
    `replicate(model)`). The first caller's settings hold for the key."""
    model = shared_load(key, loader)
    with _registry_lock:
        if key not in _models:
            _models[key] = SharedModel(model, max_batch_size, max_batch_delay_ms, max_concurrent, replicate)
        return _models[key]


@contextlib.contextmanager
def without_delay():
    """Calls in this thread run alone as soon as the model is free, without waiting max_batch_delay_ms
    for other callers or joining their batch (a dry run at start, which would otherwise wait for a
    stream that may never come, or put the streams it joined out of step)."""
    before = getattr(_local, "urgent", False)
    _local.urgent = True
    try:
        yield
    finally:
        _local.urgent = before


def forget(key):
    """Drops the model of `key` (the next shared_model(key, …) loads it again)."""
    with _registry_lock:
        _models.pop(key, None)
        _loaded.pop(key, None)


class _Request:
    __slots__ = ("inputs", "size", "signature", "arrived", "urgent", "done", "output", "error")

    def __init__(self, inputs):
        self.inputs = inputs
        self.size = len(inputs)
        if isinstance(inputs, torch.Tensor):
            self.signature = (tuple(inputs.shape[1:]), inputs.dtype, inputs.device)
        elif isinstance(inputs, numpy.ndarray):
            self.signature = (numpy.ndarray, inputs.shape[1:], inputs.dtype)
        else:
            self.signature = list
        self.arrived = time.monotonic()
        self.urgent = getattr(_local, "urgent", False)
        self.done = False
        self.output = None
        self.error = None


class SharedModel:
    """A model called in batches gathered from the threads that call it (see the module's doc).
    Counters: calls (requests), batches (model calls), items, largest_batch (items), batch_sizes
    (items per batch → how many batches had that many), replicas (the model and its copies: the
    objects batches ran on), replica_error (why a copy could not be made; None)."""

    def __init__(self, model, max_batch_size=8, max_batch_delay_ms=0.0, max_concurrent=1, replicate=None):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size: {max_batch_size!r} is not at least 1")
        if max_batch_delay_ms < 0:
            raise ValueError(f"max_batch_delay_ms: {max_batch_delay_ms!r} is negative")
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent: {max_concurrent!r} is not at least 1")
        if max_concurrent > 1 and replicate is None:
            raise ValueError(f"max_concurrent: {max_concurrent} batches at once need replicate, which copies the model")
        self.model = model
        self.max_batch_size = max_batch_size
        self.max_batch_delay = max_batch_delay_ms / 1000.0
        self.max_concurrent = max_concurrent
        self.calls = 0
        self.batches = 0
        self.items = 0
        self.largest_batch = 0
        self.batch_sizes = collections.Counter()
        self.replicas = [model]
        self.replica_error = None
        self._replicate = replicate
        self._free = [model]  # replicas no call is using
        self._replicas_made = 1  # made or being made
        self._pool = threading.Condition(threading.Lock())  # _free, replicas, _replicas_made
        self._counted = threading.Lock()  # the counters (a leader and a caller without delay count)
        self._queue = collections.deque()
        self._queued_items = 0
        self._leaders = 0  # callers gathering or running a batch
        self._changed = threading.Condition(threading.Lock())

    def __call__(self, inputs):
        """The model's outputs for `inputs` (a batch: a tensor whose first dimension counts the
        items, or a list of items), as if it had been called on them alone."""
        request = _Request(inputs)
        if request.size == 0:
            return self._call_model(inputs)
        if request.urgent:  # alone, at once: joining others would put its stream out of step with theirs
            with self._changed:
                self.calls += 1
            self._run([request])
            if request.error is not None:
                raise request.error
            return request.output
        with self._changed:
            self.calls += 1
            self._queue.append(request)
            self._queued_items += request.size
            self._changed.notify_all()  # a gathering caller may have enough now
            while not request.done:
                # Nothing queued: another caller took this request and runs it.
                if self._leaders >= self.max_concurrent or not self._queue:
                    self._changed.wait()
                    continue
                self._leaders += 1
                batch = self._gather()
                self._changed.release()
                try:
                    if batch:
                        self._run(batch)
                finally:
                    self._changed.acquire()
                    self._leaders -= 1
                    self._changed.notify_all()
        if request.error is not None:
            raise request.error
        return request.output

    def _gather(self):
        """Called holding the lock: waits for a full batch or the oldest request's deadline, then
        takes the requests of one batch from the queue, oldest first ([] when another caller
        gathering at the same time took them all)."""
        while self._queue and self._queued_items < self.max_batch_size:
            remaining = self._queue[0].arrived + self.max_batch_delay - time.monotonic()
            if remaining <= 0:
                break
            self._changed.wait(remaining)
        if not self._queue:
            return []
        first = self._queue.popleft()
        batch, size = [first], first.size
        kept = collections.deque()
        while self._queue and size < self.max_batch_size:
            request = self._queue.popleft()
            if request.signature != first.signature or size + request.size > self.max_batch_size:
                kept.append(request)  # for a later batch, still in arrival order
                continue
            batch.append(request)
            size += request.size
        kept.extend(self._queue)
        self._queue = kept
        self._queued_items -= size
        return batch

    def _run(self, batch):
        size = sum(request.size for request in batch)
        with self._counted:
            self.batches += 1
            self.items += size
            self.largest_batch = max(self.largest_batch, size)
            self.batch_sizes[size] += 1
        try:
            if len(batch) == 1:
                outputs = [self._call_model(batch[0].inputs)]
            else:
                parts = [request.inputs for request in batch]
                if isinstance(parts[0], torch.Tensor):
                    joined = torch.cat(parts)
                elif isinstance(parts[0], numpy.ndarray):
                    joined = numpy.concatenate(parts)
                else:
                    joined = [item for part in parts for item in part]
                outputs = _split(self._call_model(joined), [request.size for request in batch])
        except Exception as error:  # noqa: BLE001 - handed to the callers
            if len(batch) == 1:
                batch[0].error = error
            else:  # each alone: one bad input fails its own caller only
                for request in batch:
                    self._run([request])
            for request in batch:
                request.done = True
            return
        for request, output in zip(batch, outputs):
            request.output = output
            request.done = True

    def _call_model(self, inputs):
        replica = self._take_replica()
        try:
            with torch.no_grad():
                return replica(inputs)
        finally:
            with self._pool:
                self._free.append(replica)
                self._pool.notify()

    def _take_replica(self):
        """A replica no other call is using: a free one, else a new copy while fewer than
        max_concurrent exist, else the first one given back."""
        with self._pool:
            while not self._free:
                if self._replicas_made < self.max_concurrent and self.replica_error is None:
                    self._replicas_made += 1
                    break
                self._pool.wait()
            else:
                return self._free.pop()
        try:
            replica = self._replicate(self.model)
        except Exception as error:  # noqa: BLE001 - the replicas made so far go on alone
            with self._pool:
                self._replicas_made -= 1
                self.replica_error = f"{type(error).__name__}: {error}"
                while not self._free:
                    self._pool.wait()
                return self._free.pop()
        with self._pool:
            self.replicas.append(replica)
        return replica


def _split(output, sizes):
    """`output` of a batch cut into the outputs of consecutive parts of `sizes` items."""
    total = sum(sizes)
    if isinstance(output, torch.Tensor):
        if output.dim() == 0 or output.shape[0] != total:
            raise ValueError(f"the model's output (shape {tuple(output.shape)}) has no first dimension "
                             f"of {total} items to hand back")
        return list(output.split(sizes))
    if isinstance(output, numpy.ndarray):
        if output.ndim == 0 or output.shape[0] != total:
            raise ValueError(f"the model's output (shape {output.shape}) has no first dimension "
                             f"of {total} items to hand back")
        return numpy.split(output, numpy.cumsum(sizes)[:-1])
    if isinstance(output, list):
        if len(output) != total:
            raise ValueError(f"the model returned {len(output)} outputs for {total} items")
        parts, start = [], 0
        for size in sizes:
            parts.append(output[start:start + size])
            start += size
        return parts
    if isinstance(output, dict):
        split = {key: _split(value, sizes) for key, value in output.items()}
        return [{key: parts[index] for key, parts in split.items()} for index in range(len(sizes))]
    if isinstance(output, tuple):
        split = [_split(value, sizes) for value in output]
        return [tuple(parts[index] for parts in split) for index in range(len(sizes))]
    raise ValueError(f"the model returned a {type(output).__name__}, which can't be split by item")
