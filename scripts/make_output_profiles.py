"""Write the ICC profiles of --output_profile that no package ships: ProPhoto RGB, made by littleCMS.

    python scripts/make_output_profiles.py    # rewrites transforms/profiles/ProPhoto-RGB.icc

ROMM RGB (ISO 22028-2) primaries, D50 white, a pure 1.8 curve, described as such: littleCMS
(`cmsCreateRGBProfile`, through ctypes: Pillow's ImageCms creates only sRGB, Lab and XYZ) writes
the profile. Run once; the profile is committed (`transforms/profiles/README.md`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
from pathlib import Path

import PIL

PROFILES = Path(__file__).resolve().parents[1] / "transforms" / "profiles"


class _XyY(ctypes.Structure):
    _fields_ = [("x", ctypes.c_double), ("y", ctypes.c_double), ("Y", ctypes.c_double)]


class _Primaries(ctypes.Structure):
    _fields_ = [("red", _XyY), ("green", _XyY), ("blue", _XyY)]


def _littlecms() -> ctypes.CDLL:
    """The system's liblcms2, or the one Pillow's wheel bundles."""
    bundled = glob.glob(os.path.join(os.path.dirname(PIL.__file__), "..", "pillow.libs", "liblcms2-*.so*"))
    library = ctypes.util.find_library("lcms2") or next(iter(bundled), None)
    if library is None:
        raise SystemExit("littleCMS (liblcms2) not found")
    lcms = ctypes.CDLL(library)
    lcms.cmsBuildGamma.restype = ctypes.c_void_p
    lcms.cmsBuildGamma.argtypes = [ctypes.c_void_p, ctypes.c_double]
    lcms.cmsCreateRGBProfile.restype = ctypes.c_void_p
    lcms.cmsCreateRGBProfile.argtypes = [ctypes.POINTER(_XyY), ctypes.POINTER(_Primaries), ctypes.c_void_p * 3]
    lcms.cmsMLUalloc.restype = ctypes.c_void_p
    lcms.cmsMLUalloc.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lcms.cmsMLUsetASCII.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]
    lcms.cmsWriteTag.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p]
    lcms.cmsSaveProfileToMem.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)]
    return lcms


def rgb_profile(white: tuple, primaries: tuple, gamma: float, description: str, copyright: str) -> bytes:
    """An ICC v4 matrix/curve RGB profile from xy chromaticities and a pure gamma, as littleCMS writes it."""
    lcms = _littlecms()
    curve = lcms.cmsBuildGamma(None, gamma)
    profile = lcms.cmsCreateRGBProfile(
        ctypes.byref(_XyY(*white, 1.0)),
        ctypes.byref(_Primaries(*(_XyY(x, y, 1.0) for x, y in primaries))),
        (ctypes.c_void_p * 3)(curve, curve, curve),
    )
    for signature, text in ((0x64657363, description), (0x63707274, copyright)):  # 'desc', 'cprt'
        mlu = lcms.cmsMLUalloc(None, 1)
        lcms.cmsMLUsetASCII(mlu, b"en", b"US", text.encode())
        lcms.cmsWriteTag(profile, signature, mlu)
    size = ctypes.c_uint32(0)
    lcms.cmsSaveProfileToMem(profile, None, ctypes.byref(size))
    data = ctypes.create_string_buffer(size.value)
    lcms.cmsSaveProfileToMem(profile, data, ctypes.byref(size))
    return data.raw[: size.value]


if __name__ == "__main__":
    D50 = (0.3457, 0.3585)
    ROMM = ((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001))
    data = rgb_profile(D50, ROMM, 1.8, "ProPhoto RGB (ROMM primaries, D50, gamma 1.8)", "No copyright, use freely")
    (PROFILES / "ProPhoto-RGB.icc").write_bytes(data)
    print(f"{PROFILES / 'ProPhoto-RGB.icc'}: {len(data)} bytes")
