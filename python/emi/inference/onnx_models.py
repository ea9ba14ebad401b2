# SPDX-License-Identifier: LGPL-2.1-or-later
"""ONNX model files: their input read from the file itself, and two ways to run them. ONNX Runtime
when its Python module is importable; else OpenCV's DNN module (Debian's python3-opencv), which
says nothing about a model's input, so the input is read from the file's protobuf here.

A loaded model is shared by every session of the process that opens the same file on the same
backend and device (emi.shared_models): BatchRunner runs the batches that sessions' requests are
gathered into, each runner one call at a time (OpenCV's nets are not thread-safe; on the CPU the
batches of several streams run at once on up to one copy of the net per core), and SharedOnnxModel
is what a session's task calls."""

import dataclasses
import os

import numpy

from .errors import ModelSetupError

BACKENDS = ("auto", "torch", "onnxruntime", "opencv")

# ONNX TensorProto.DataType numbers of the input types a frame can become.
_ELEMENT_TYPES = {1: numpy.float32, 2: numpy.uint8, 10: numpy.float16, 11: numpy.float64}
_ORT_TYPES = {"tensor(float)": numpy.float32, "tensor(uint8)": numpy.uint8,
              "tensor(float16)": numpy.float16, "tensor(double)": numpy.float64}


@dataclasses.dataclass
class TensorInfo:
    name: str
    shape: list  # one entry per dimension: a number, or None where the model leaves it open
    dtype: object = numpy.float32


class MalformedModel(Exception):
    """The bytes are not an ONNX model (a protobuf ModelProto with a graph)."""


def is_onnx_file(path):
    """Whether `path` names an ONNX model: by its extension (torch's own files are zip archives
    or pickles, which ONNX never is)."""
    return path.lower().endswith(".onnx")


def read_onnx_io(path):
    """(inputs, outputs) of the ONNX file `path`: TensorInfo lists, initializers (weights that old
    exporters also list as inputs) left out. Raises ModelSetupError saying what is wrong."""
    if not os.path.exists(path):
        raise ModelSetupError(ModelSetupError.NOT_FOUND, f"model {path}: no such file")
    if os.path.isdir(path):
        raise ModelSetupError(ModelSetupError.UNREADABLE, f"model {path} is a folder, not a model file")
    try:
        with open(path, "rb") as file:
            data = memoryview(file.read())
    except OSError as error:
        raise ModelSetupError(ModelSetupError.UNREADABLE, f"model {path}: {error.strerror}") from None
    try:
        return _graph_io(data)
    except MalformedModel as error:
        raise ModelSetupError(ModelSetupError.UNREADABLE,
                              f"model {path} is not an ONNX model ({error}; {len(data)} bytes)") from None


def load_onnx(path, backend, device):
    """The ONNX model of `path` on the backend asked for ("auto": ONNX Runtime when importable,
    else OpenCV)."""
    inputs, outputs = read_onnx_io(path)
    if len(inputs) != 1:
        raise ModelSetupError(ModelSetupError.INVALID,
                              f"model {path} takes {len(inputs)} inputs ({', '.join(i.name for i in inputs)}): "
                              "emdetect and emclassify feed models one image tensor")
    if len(inputs[0].shape) != 4:
        raise ModelSetupError(ModelSetupError.INVALID,
                              f"model {path}: its input {inputs[0].name} has shape {_shape_text(inputs[0].shape)}, "
                              "not an image batch (N×C×H×W)")
    if backend == "torch":
        raise ModelSetupError(ModelSetupError.INVALID,
                              f"backend torch: model {path} is an ONNX file, which torch can't run; "
                              "use backend=auto, onnxruntime or opencv")
    if backend in ("auto", "onnxruntime"):
        try:
            import onnxruntime
        except ImportError as error:
            if backend == "onnxruntime":
                raise ModelSetupError(ModelSetupError.INVALID,
                                      f"backend onnxruntime: its Python module can't be imported ({error}); "
                                      "install it, or use backend=opencv (or auto)") from None
        else:
            return OnnxRuntimeModel(onnxruntime, path, inputs[0], outputs, device)
    return OpenCVModel(path, inputs[0], outputs, device)


def effective_backend(backend):
    """What `backend` ("auto", "onnxruntime", "opencv") runs ONNX files with here: "auto" is
    onnxruntime when its module is importable, else opencv (part of a shared model's key)."""
    if backend != "auto":
        return backend
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "opencv"
    return "onnxruntime"


class BatchRunner:
    """Runs a loaded ONNX model on a batch of any number of images and returns a list with each
    image's outputs (a list of arrays, each with a first dimension of 1). A model whose batch
    dimension is open takes the batch in one run; one with a fixed batch size takes it in chunks of
    that size (the last one padded with zeros), so a model of one image at a time runs the images
    one after another. Outputs without a batch dimension (a first dimension that is not the
    chunk's size) are handed back per image by running the images one at a time."""

    def __init__(self, model):
        self.model = model
        self.fixed = model.input.shape[0]  # None: open
        self.runs = 0  # model runs (a batch of 3 on a model of fixed batch 1: 3)

    def replicate(self):
        return BatchRunner(self.model.replica())

    def __call__(self, blob):
        count = blob.shape[0]
        chunk_size = self.fixed or count
        results = []
        for start in range(0, count, chunk_size):
            chunk = blob[start:start + chunk_size]
            real = chunk.shape[0]
            if real < chunk_size:
                chunk = numpy.concatenate([chunk, numpy.zeros((chunk_size - real,) + chunk.shape[1:], chunk.dtype)])
            outputs = self._run(chunk)
            if chunk_size == 1:
                results.append(outputs)
            elif all(output.ndim > 0 and output.shape[0] == chunk_size for output in outputs):
                results.extend([output[index:index + 1] for output in outputs] for index in range(real))
            elif self.fixed is None:
                results.extend(self._run(chunk[index:index + 1]) for index in range(real))
            else:
                shapes = ", ".join(_shape_text(output.shape) for output in outputs)
                raise ValueError(f"the model takes batches of {chunk_size} images, but its outputs ({shapes}) "
                                 "have no batch dimension to hand each image its own")
        return results

    def _run(self, chunk):
        self.runs += 1
        return [numpy.asarray(output) for output in self.model.run(numpy.ascontiguousarray(chunk))]


class SharedOnnxModel:
    """What a session's task calls: a loaded model's `input` and `backend`, and `run(blob)`, the
    model's outputs for the blob's images, through the process's shared, batched model."""

    def __init__(self, model, batched):
        self.model = model
        self.batched = batched
        self.input = model.input
        self.backend = model.backend
        self.output_names = model.output_names

    def run(self, blob):
        per_image = self.batched(blob)
        if len(per_image) == 1:
            return per_image[0]
        return [numpy.concatenate(column) for column in zip(*per_image)]


class OnnxRuntimeModel:
    backend = "onnxruntime"
    max_concurrent = 1  # one session, which spreads a run over the cores itself

    def __init__(self, onnxruntime, path, input_info, outputs, device):
        available = onnxruntime.get_available_providers()
        providers = ["CPUExecutionProvider"]
        if device in ("cuda", "auto") and "CUDAExecutionProvider" in available:
            providers.insert(0, "CUDAExecutionProvider")
        elif device == "cuda":
            raise ModelSetupError(ModelSetupError.INVALID,
                                  f"device cuda: onnxruntime has no CUDA provider here ({', '.join(available)})")
        try:
            self.session = onnxruntime.InferenceSession(path, providers=providers)
        except Exception as error:
            raise ModelSetupError(ModelSetupError.UNREADABLE,
                                  f"model {path}: onnxruntime can't load it: {_first_line(error)}") from None
        declared = self.session.get_inputs()[0]
        self.input = TensorInfo(declared.name,
                                [side if isinstance(side, int) and side > 0 else None for side in declared.shape],
                                _ORT_TYPES.get(declared.type, numpy.float32))
        self.output_names = [output.name for output in self.session.get_outputs()]

    def run(self, blob):
        return self.session.run(None, {self.input.name: blob})


class OpenCVModel:
    """An ONNX file on OpenCV's DNN module. A net runs one forward pass at a time, and a pass of a
    small model leaves cores idle (YOLOX-Nano at 416×416: 62 ms on 2 threads, 87 ms on one), so on
    the CPU several streams are served by up to one net per core (`max_concurrent`, `replica()`):
    copies built from the bytes read once, not loads of the file."""
    backend = "opencv"

    def __init__(self, path, input_info, outputs, device, data=None):
        import cv2

        if data is None:
            try:
                data = numpy.fromfile(path, numpy.uint8)
            except OSError as error:
                raise ModelSetupError(ModelSetupError.UNREADABLE, f"model {path}: {error.strerror}") from None
        try:
            self.net = cv2.dnn.readNetFromONNX(data)
        except cv2.error as error:
            raise ModelSetupError(ModelSetupError.UNREADABLE,
                                  f"model {path}: OpenCV {cv2.__version__}'s DNN module can't load it: "
                                  f"{_opencv_reason(error)}") from None
        if device == "cuda":
            if not hasattr(cv2, "cuda") or cv2.cuda.getCudaEnabledDeviceCount() == 0:
                raise ModelSetupError(ModelSetupError.INVALID,
                                      "device cuda: this OpenCV has no CUDA support; use device=auto or cpu")
            self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_CUDA)
            self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CUDA)
        self._copy_of = (path, input_info, outputs, device, data)
        # One GPU runs one pass at a time whatever the nets: a copy there would only take memory.
        self.max_concurrent = 1 if device == "cuda" else usable_cores()
        self.input = input_info
        self.output_names = [output.name for output in outputs]
        self.layer_names = list(self.net.getUnconnectedOutLayersNames())

    def replica(self):
        """A net of its own on the same model bytes and device, for a pass run at the same time."""
        return OpenCVModel(*self._copy_of)

    def run(self, blob):
        self.net.setInput(blob)
        return list(self.net.forward(self.layer_names))


def usable_cores():
    """The CPUs this process may run on (its affinity, which taskset and containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class TorchCallable:
    """An ONNX model called as a torch module is (classification): a batch tensor in, the first
    output as a tensor out."""

    def __init__(self, model):
        self.model = model

    def __call__(self, batch):
        import torch

        blob = batch.detach().cpu().numpy().astype(self.model.input.dtype, copy=False)
        return torch.from_numpy(numpy.ascontiguousarray(self.model.run(blob)[0]))


# --- The few protobuf fields of an ONNX ModelProto that say what goes in and out. ---
# ModelProto.graph = 7; GraphProto.initializer = 5, input = 11, output = 12; ValueInfoProto.name
# = 1, type = 2; TypeProto.tensor_type = 1; Tensor.elem_type = 1, shape = 2; TensorShapeProto.dim
# = 1; Dimension.dim_value = 1, dim_param = 2; TensorProto.name = 8.

def _varint(data, position, end):
    value, shift = 0, 0
    while True:
        if position >= end or shift > 63:
            raise MalformedModel("a number runs past its message")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def _fields(data, start, end):
    """(field number, value) of a message: a number for varints, a (start, end) span for
    length-delimited fields; fixed-size fields are skipped."""
    position = start
    while position < end:
        key, position = _varint(data, position, end)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise MalformedModel("field number 0")
        if wire_type == 0:
            value, position = _varint(data, position, end)
            yield number, value
        elif wire_type == 2:
            length, position = _varint(data, position, end)
            if position + length > end:
                raise MalformedModel("a field runs past the end of the file")
            yield number, (position, position + length)
            position += length
        elif wire_type in (1, 5):
            position += 8 if wire_type == 1 else 4
            if position > end:
                raise MalformedModel("a field runs past the end of the file")
        else:
            raise MalformedModel(f"wire type {wire_type}")


def _sub(data, span, number):
    return [value for field, value in _fields(data, *span) if field == number]


def _text(data, span):
    try:
        return bytes(data[span[0]:span[1]]).decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedModel("a name that is not UTF-8") from None


def _tensor_info(data, span):
    names = _sub(data, span, 1)
    info = TensorInfo(_text(data, names[0]) if names else "", [])
    for type_span in _sub(data, span, 2):
        for tensor_span in _sub(data, type_span, 1):
            for field, value in _fields(data, *tensor_span):
                if field == 1:
                    info.dtype = _ELEMENT_TYPES.get(value, numpy.float32)
                elif field == 2:
                    for dim_span in _sub(data, value, 1):
                        sizes = _sub(data, dim_span, 1)
                        info.shape.append(sizes[0] if sizes and sizes[0] > 0 else None)
    return info


def _graph_io(data):
    graphs = [value for field, value in _fields(data, 0, len(data)) if field == 7 and isinstance(value, tuple)]
    if not graphs:
        raise MalformedModel("no graph")
    graph = graphs[-1]
    initializers = {_text(data, name) for span in _sub(data, graph, 5) for name in _sub(data, span, 8)}
    inputs = [_tensor_info(data, span) for span in _sub(data, graph, 11)]
    outputs = [_tensor_info(data, span) for span in _sub(data, graph, 12)]
    inputs = [info for info in inputs if info.name not in initializers]
    if not inputs or not outputs:
        raise MalformedModel("a graph without inputs or outputs")
    return inputs, outputs


def _shape_text(shape):
    return "×".join("?" if side is None else str(side) for side in shape) or "(scalar)"


def _first_line(error):
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _opencv_reason(error):
    """The useful part of a cv2.error: its lines without OpenCV's source location and markers."""
    lines = [line.strip().lstrip(">").strip() for line in str(error).strip().splitlines()]
    lines = [line.split(" error: ", 1)[-1] for line in lines if line]
    return "; ".join(lines) if lines else "cv2.error"
