"""RunInference model handler for the Keras colorization models.

Beam's own TensorFlow handler imports tensorflow_hub and loads SavedModels; this
small handler loads a Keras 3 `.keras` file, with safe_mode on and its sha256
checked, and batches the scans' model inputs. By default one copy of the model
serves every worker process of a machine (Beam's cross-process model sharing), and
every batch has the same shape. It runs on any Keras backend: TensorFlow is
imported only when it is Keras's backend (`KERAS_BACKEND`, TensorFlow by default).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from models.registry import ModelSpec, file_sha256, load_keras_file
from pipeline.records import describe_error
from pipeline.scans import Scan
from pipeline.storage import skip_credentials_for_emulator
from transforms.hints import HINT_CHANNELS
from transforms.lab import AB_SCALE

logger = logging.getLogger("revivacolor")

# The a/b distance between a scan's two colorings (as it is and mirrored) at which their mean keeps 1/e
# of its chroma: 25 clears the empty wall of the basketball demo, and costs the validation sets no
# accuracy (docs/models.md, "Mirror averaging and vividness").
MIRROR_DOUBT = 25.0


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[str]:
    """A local path for a model that may live on gs:// (Keras reads local files only).

    A downloaded copy is deleted on leaving the block: every worker process of every run
    makes one, and a long-lived worker or laptop should not collect them in its temp folder.
    """
    if FileSystems.get_scheme(path) in (None, "file"):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="revivacolor-model-") as folder:
        local = os.path.join(folder, os.path.basename(path))
        with FileSystems.open(path) as source, open(local, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
        yield local


VERBOSE_VARIABLE = "REVIVACOLOR_VERBOSE"  # set by --verbose; worker processes inherit it
MODEL_COPIES = "model_copies"  # the counter of models loaded by the workers
_copies_loaded = Metrics.counter("revivacolor", MODEL_COPIES)
_import_lock = threading.Lock()


def import_keras():
    """Keras (and its backend), imported without their start-up noise unless --verbose.

    On a machine without a GPU, TensorFlow writes oneDNN and "could not find cuda drivers"
    notices to the process's stderr before its logging is set up, where no setting reaches
    them (so stderr is closed while it is imported), and a cuInit error after (level 3 hides it).
    JAX would take most of a GPU's memory at its first use; like TensorFlow's memory growth,
    allocating on demand lets more than one model copy share a GPU.
    """
    with _import_lock:
        quiet = "keras" not in sys.modules and not os.environ.get(VERBOSE_VARIABLE)
        gpu = bool(glob.glob("/dev/nvidia[0-9]*"))
        if quiet:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if gpu else "3")
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        with _stderr_discarded() if quiet and not gpu else contextlib.nullcontext():
            import keras
    return keras


def _tensorflow():
    """TensorFlow when it is Keras's backend, else None: other backends run where it cannot be imported."""
    if import_keras().backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return tf


@contextlib.contextmanager
def _stderr_discarded() -> Iterator[None]:
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_checked_model(spec: ModelSpec):
    """The model, loaded as every worker loads it, after checking it is one the pipeline can use.

    Raises ValueError with one clear line for a file that is no Keras model, a changed file
    (sha256), or a model whose input or output does not fit: (size, size, 1) L in, (size, size, 2) a/b out.
    """
    import_keras()  # the backend set up, quietly, before the model file is read
    with local_copy(spec.path) as path:
        if spec.sha256 and file_sha256(path) != spec.sha256:
            raise ValueError(
                f"model file {spec.path} does not match the sha256 in its model card; it may be corrupt or replaced"
            )
        try:
            model = load_keras_file(path)
        except Exception as error:  # noqa: BLE001 - whatever Keras says, the file is not a usable model
            message = f"--model {spec.path} cannot be loaded as a Keras model: {describe_error(error)}"
            raise ValueError(message) from error
    size = spec.input_size
    inputs = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    wanted_inputs = [(1, "L"), (HINT_CHANNELS, "hints")][: 1 + spec.takes_hints]
    if len(inputs) != len(wanted_inputs):
        raise ValueError(
            f"--model {spec.path} takes {len(inputs)} inputs, its model card says "
            f"{len(wanted_inputs)} ({' and '.join(name for _, name in wanted_inputs)})"
        )
    checks = [
        *zip(["input"] * len(inputs), inputs, wanted_inputs, strict=True),
        ("output", model.output_shape, (2, "a/b")),
    ]
    for what, shape, (channels, name) in checks:
        shape = tuple(shape) if isinstance(shape, tuple | list) else None
        if shape is None or len(shape) != 4 or shape[3] != channels or shape[1:3] not in ((size, size), (None, None)):
            raise ValueError(
                f"--model {spec.path} does not fit the pipeline: its {what} is {shape or 'not one array'}, "
                f"the pipeline needs (batch, {size}, {size}, {channels}) ({name})"
            )
    return model


def model_batch(
    lightness: np.ndarray, takes_hints: bool, hints: Sequence[np.ndarray | None] = ()
) -> np.ndarray | list[np.ndarray]:
    """What a model is fed for a batch of L inputs (n, size, size, 1).

    L alone, or for a model that takes known colors, L and the hints: each scan's hint grid,
    zeros for a scan without one (and for any beyond `hints`), which gives the automatic result.
    """
    if not takes_hints:
        return lightness
    grid = np.zeros((*lightness.shape[:3], HINT_CHANNELS), np.float32)
    for index, known in enumerate(hints):
        if known is not None:
            grid[index] = known
    return [lightness, grid]


def predict_ab(model, inputs: np.ndarray | list[np.ndarray], mirror_average: bool) -> np.ndarray:
    """The model's a/b for a batch (from `model_batch`); with `mirror_average`, its a/b for each scan
    and for the scan's mirror image (left and right swapped, hints too), combined by `agreed_colors`.

    One call on a batch twice the size, so a compiling backend (XLA) still sees one shape.
    """
    if not mirror_average:
        return np.asarray(model.predict_on_batch(inputs))
    arrays = inputs if isinstance(inputs, list) else [inputs]
    doubled = [np.concatenate([array, array[:, :, ::-1]]) for array in arrays]
    both = np.asarray(model.predict_on_batch(doubled if isinstance(inputs, list) else doubled[0]))
    count = len(arrays[0])
    return agreed_colors(both[:count], both[count:, :, ::-1])


def agreed_colors(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The mean of two colorings of the same scans (a/b / AB_SCALE), faded toward gray where they disagree.

    Where the model is sure of a color (skin, sky, grass) it predicts it for a scan and for its
    mirror image alike; where it guesses (an empty wall, a shirt) the two guesses often differ,
    say orange and green, and their plain mean still paints a yellow blotch. So each pixel keeps
    exp(-(d / MIRROR_DOUBT)^2) of the mean's chroma, d being the two colors' distance in a/b.
    """
    distance = np.linalg.norm(first - second, axis=-1, keepdims=True) * AB_SCALE
    return (first + second) / 2 * np.exp(-np.square(distance / MIRROR_DOUBT))


def limit_cpu_threads(threads: int) -> None:
    """Let TensorFlow use at most `threads` CPU threads per op (0: its default, every core).

    Worker processes sharing one machine otherwise each start a thread per core and
    spend their time taking the cores from each other. Other backends keep their own.
    """
    tf = _tensorflow()
    if threads <= 0:
        return
    if tf is None:
        logger.warning("--inference_threads=%d ignored: Keras does not run on TensorFlow here", threads)
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already runs in this process: its thread pools are fixed
        logger.warning("--inference_threads=%d ignored: TensorFlow was already initialized here", threads)


def use_gpu_memory_growth() -> None:
    """Let several model copies share a GPU instead of the first one taking all its memory (TensorFlow's)."""
    tf = _tensorflow()
    for gpu in [] if tf is None else tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # the GPU is already initialised in this process
            pass


class ColorizerModelHandler(ModelHandler[Scan, PredictionResult, Any]):
    """Predicts a/b for batches of scans; each result keeps its Scan as `example`.

    `model_copies` above 0: that many copies of the model per machine, shared by all its worker
    processes through Beam's `multi_process_shared` (a GPU holds one model however many processes
    do the per-scan work); 0: a copy in every worker process. `mirror_average`: see `predict_ab`.
    """

    def __init__(
        self,
        spec: ModelSpec,
        max_batch_size: int = 8,
        cpu_threads: int = 0,
        model_copies: int = 1,
        mirror_average: bool = False,
    ):
        # Full batches: left to adapt, BatchElements starts small and sizes batches from the timings it
        # has seen, so the model would see a few scans at a time; a bundle's last, partial batch is still
        # flushed when the bundle ends, and padded in run_inference.
        super().__init__(
            min_batch_size=max_batch_size, max_batch_size=max_batch_size, model_copies=model_copies or None
        )
        self._spec, self._batch_size, self._cpu_threads = spec, max_batch_size, cpu_threads
        self._mirror_average = mirror_average
        self._load_uncounted = False

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    def load_model(self):
        limit_cpu_threads(self._cpu_threads)
        use_gpu_memory_growth()
        skip_credentials_for_emulator()
        model = load_checked_model(self._spec)
        logger.info("loaded model %s version %s from %s", self._spec.name, self._spec.version, self._spec.path)
        # Counted at this handler's next batch: Beam records a worker's metrics while it processes
        # elements, not while a DoFn is set up (where a shared model is loaded).
        self._load_uncounted = True
        return model

    def run_inference(
        self, batch: Sequence[Scan], model, inference_args: dict[str, Any] | None = None
    ) -> Iterable[PredictionResult]:
        if self._load_uncounted:
            _copies_loaded.inc()
            self._load_uncounted = False
        started = time.perf_counter()
        predictions = predict_ab(model, self._model_inputs(batch), self._mirror_average)[: len(batch)]
        share = (time.perf_counter() - started) / len(batch)
        # Each scan with its share of the batch's time: a new Scan, as Beam's elements are not to be changed.
        return [
            PredictionResult(
                example=dataclasses.replace(scan, seconds=scan.seconds + share),
                inference=prediction,
                model_id=self._spec.version,
            )
            for scan, prediction in zip(batch, predictions, strict=True)
        ]

    def _model_inputs(self, batch: Sequence[Scan]) -> np.ndarray | list[np.ndarray]:
        """L (and, for a model that takes them, the hints: zeros for a scan without), padded to a full batch.

        One input shape: a compiling backend (XLA, TensorRT) compiles the model once.
        """
        lightness = np.stack([scan.model_input for scan in batch])
        padding = np.zeros((self._batch_size - len(batch), *lightness.shape[1:]), lightness.dtype)
        lightness = np.concatenate([lightness, padding])
        return model_batch(lightness, self._spec.takes_hints, [scan.model_hints for scan in batch])

    def get_num_bytes(self, batch: Sequence[Scan]) -> int:
        return sum(scan.model_input.nbytes for scan in batch)

    def get_metrics_namespace(self) -> str:
        return "RevivaColor"
