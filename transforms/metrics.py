"""Color metrics, shared by the pipeline and the report.

- MAE, MSE, PSNR and SSIM on 8-bit sRGB and on the CIELAB a/b channels. SSIM follows
  Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03,
  per channel and averaged, without the border the window cannot cover.
- CIEDE2000 color difference (Sharma, Wu and Dalal 2005), mean over pixels.
- Colorfulness M3 of Hasler and Suesstrunk (2003).
- Skin-tone error: CIEDE2000 inside the faces OpenCV's Haar cascade finds on the original.
- What a viewer sees of a result's chroma: the cast it paints on truly neutral pixels, and
  the chroma it paints on vivid ones against the original's.
"""

from __future__ import annotations

import math
import threading

import cv2
import numpy as np

from transforms.codec import quantize, to_float_bgr
from transforms.lab import AB_MAX, AB_MIN, bgr_to_lab, row_strips

SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03
FIDELITY_NAMES = ("mae", "mse", "psnr", "ssim", "mae_ab", "mse_ab", "psnr_ab", "ssim_ab")
METRIC_NAMES = (*FIDELITY_NAMES, "delta_e2000", "colorfulness_truth", "skin_delta_e2000")
FACE_DETECTION_SIDE = 1024  # faces are looked for on a copy no larger than this
NEUTRAL_CHROMA = 5.0  # an original's chroma below this is a neutral surface: a white wall, a gray suit
VIVID_CHROMA = 20.0  # and from this up a vivid one: a blue sky, a red dress, green leaves


def psnr(mse: float, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB; infinite for identical images."""
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def ssim(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Mean structural similarity of two images with the same shape (channels averaged)."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)

    def blur(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    pad = (SSIM_WINDOW - 1) // 2
    if min(ssim_map.shape[:2]) > 2 * pad:
        ssim_map = ssim_map[pad:-pad, pad:-pad]
    return float(ssim_map.mean())


def _four_metrics(result: np.ndarray, truth: np.ndarray, data_range: float) -> tuple[float, ...]:
    difference = result.astype(np.float64) - truth.astype(np.float64)
    mse = float(np.mean(difference**2))
    return (
        float(np.mean(np.abs(difference))),
        mse,
        psnr(mse, data_range),
        ssim(result, truth, data_range),
    )


def delta_e2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 color difference of two Lab arrays (..., 3), per element, with kL = kC = kH = 1."""
    lab1, lab2 = np.asarray(lab1, np.float64), np.asarray(lab2, np.float64)
    l1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    l2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    c_mean7 = ((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2) ** 7
    g = 0.5 * (1 - np.sqrt(c_mean7 / (c_mean7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    chroma_product_zero = c1p * c2p == 0

    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(chroma_product_zero, 0.0, dh)
    d_l, d_c = l2 - l1, c2p - c1p
    d_h = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))

    l_mean, c_mean = (l1 + l2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_mean = np.where(np.abs(h1p - h2p) <= 180, h_sum / 2, np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2))
    h_mean = np.where(chroma_product_zero, h_sum, h_mean)
    t = (
        1
        - 0.17 * np.cos(np.radians(h_mean - 30))
        + 0.24 * np.cos(np.radians(2 * h_mean))
        + 0.32 * np.cos(np.radians(3 * h_mean + 6))
        - 0.20 * np.cos(np.radians(4 * h_mean - 63))
    )
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * c_mean
    s_h = 1 + 0.015 * c_mean * t
    c_mean7p = c_mean**7
    r_t = -2 * np.sqrt(c_mean7p / (c_mean7p + 25.0**7)) * np.sin(np.radians(60 * np.exp(-(((h_mean - 275) / 25) ** 2))))
    return np.sqrt((d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2 + r_t * (d_c / s_c) * (d_h / s_h))


COLORFULNESS_PIXELS = 1 << 20  # about this many pixels of a larger image are sampled for its colorfulness


class Colorfulness:
    """Hasler and Suesstrunk's M3 on 8-bit sRGB, added up strip by strip (a large scan's temporary
    arrays then take the memory of one strip); 0 for gray, higher for more vivid pictures.

    M3 is made of means and standard deviations, which a regular sample of a megapixel estimates
    as well as every pixel of a large scan does: an image of (height, width) is sampled every
    `stride` rows and columns, the same pixels however it is cut into strips.
    """

    def __init__(self, height: int, width: int) -> None:
        self.stride = max(1, math.isqrt(height * width // COLORFULNESS_PIXELS))
        self._pixels = 0
        self._sums = np.zeros(2)  # of rg and yb, in double precision
        self._squares = np.zeros(2)

    def sample(self, strip: np.ndarray, top: int) -> np.ndarray:
        """The sampled pixels of the strip of rows that starts at row `top`."""
        return strip[-top % self.stride :: self.stride, :: self.stride]

    def add(self, bgr8: np.ndarray) -> None:
        """Add the sampled 8-bit pixels of one strip (`sample`)."""
        blue, green, red = cv2.split(np.ascontiguousarray(bgr8))
        rg = cv2.subtract(red, green, dtype=cv2.CV_16S)
        yb = cv2.subtract(cv2.addWeighted(red, 0.5, green, 0.5, 0.0, dtype=cv2.CV_32F), blue, dtype=cv2.CV_32F)
        pixels = rg.size
        for index, opponent in enumerate((rg, yb)):
            mean, std = (value.item() for value in cv2.meanStdDev(opponent))  # OpenCV sums in double precision
            self._sums[index] += pixels * mean
            self._squares[index] += pixels * (std * std + mean * mean)
        self._pixels += pixels

    def value(self) -> float:
        means = self._sums / self._pixels
        stds = np.sqrt(np.maximum(self._squares / self._pixels - means * means, 0.0))
        return float(np.hypot(*stds) + 0.3 * np.hypot(*means))


def colorfulness(bgr8: np.ndarray) -> float:
    """Hasler and Suesstrunk's M3 of a whole 8-bit sRGB image (see `Colorfulness`)."""
    total = Colorfulness(*bgr8.shape[:2])
    for rows in row_strips(*bgr8.shape[:2]):
        total.add(total.sample(bgr8[rows], rows.start))
    return total.value()


def chroma_by_truth(result_lab: np.ndarray, truth_lab: np.ndarray) -> dict[str, float | None]:
    """The result's mean CIELAB chroma where the original is neutral (`cast`), and where it is vivid
    (`vivid_chroma`, beside the original's own there, `vivid_chroma_truth`); None without such pixels.

    A model that guesses paints a faint cream over every neutral surface and too little
    color on vivid ones: mean CIEDE2000 blends the two, these keep them apart.
    """
    truth_chroma = np.hypot(truth_lab[..., 1], truth_lab[..., 2])
    result_chroma = np.hypot(result_lab[..., 1], result_lab[..., 2])
    neutral, vivid = truth_chroma < NEUTRAL_CHROMA, truth_chroma >= VIVID_CHROMA
    return {
        "cast": float(result_chroma[neutral].mean()) if neutral.any() else None,
        "vivid_chroma": float(result_chroma[vivid].mean()) if vivid.any() else None,
        "vivid_chroma_truth": float(truth_chroma[vivid].mean()) if vivid.any() else None,
    }


SKIN_BLEED_RADIUS = 0.1  # of the photo's longer side: skin this far from every known color is not its object


def far_skin_change(
    truth_lab: np.ndarray,
    automatic_lab: np.ndarray,
    hinted_lab: np.ndarray,
    faces: list[tuple[int, int, int, int]],
    points: list[tuple[float, float]],
) -> float | None:
    """How much worse (CIEDE2000, hinted less automatic) the faces became where no known color was placed.

    Only face pixels farther than SKIN_BLEED_RADIUS from every point count: a green dress's point
    must not turn the face beside it green. None when no face pixel is that far from the points.
    """
    height, width = truth_lab.shape[:2]
    skin = np.zeros((height, width), bool)
    for x, y, w, h in faces:
        skin[y : y + h, x : x + w] = True
    unmarked = np.full((height, width), 255, np.uint8)
    for x, y in points:
        unmarked[min(int(y), height - 1), min(int(x), width - 1)] = 0
    far = cv2.distanceTransform(unmarked, cv2.DIST_L2, 5) > SKIN_BLEED_RADIUS * max(height, width)
    region = skin & far
    if not region.any():
        return None
    change = delta_e2000(hinted_lab[region], truth_lab[region]) - delta_e2000(automatic_lab[region], truth_lab[region])
    return float(change.mean())


_per_thread = threading.local()


def _face_cascade() -> cv2.CascadeClassifier:
    """The Haar face detector, one per thread: OpenCV does not promise a shared one is thread-safe."""
    if not hasattr(_per_thread, "cascade"):
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if cascade.empty():
            raise RuntimeError(
                "OpenCV's haarcascade_frontalface_default.xml is missing (opencv-python-headless 4.x ships it)"
            )
        _per_thread.cascade = cascade
    return _per_thread.cascade


def detect_faces(bgr8: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Frontal faces as (x, y, width, height) in full-resolution pixels."""
    scale = min(1.0, FACE_DETECTION_SIDE / max(bgr8.shape[:2]))
    gray = cv2.cvtColor(bgr8, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    found = _face_cascade().detectMultiScale(cv2.equalizeHist(small), scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    return [tuple(int(round(v / scale)) for v in face) for face in found]


def fidelity_metrics(result_bgr: np.ndarray, truth_pixels: np.ndarray) -> dict[str, float | int | None]:
    """Every metric of a float BGR result against a ground-truth scan of the same size.

    sRGB metrics are on 8-bit values (range 255); a/b metrics are in CIELAB units with
    the a/b range (255) as the peak; CIEDE2000 is the mean over all pixels, and over the
    faces found on the original for `skin_delta_e2000` (null, with `faces` 0, when none is found).
    """
    truth_bgr = to_float_bgr(truth_pixels)
    result8, truth8 = quantize(result_bgr, 8), quantize(truth_bgr, 8)
    result_lab, truth_lab = bgr_to_lab(result_bgr), bgr_to_lab(truth_bgr)
    rgb = _four_metrics(result8, truth8, 255.0)
    ab = _four_metrics(result_lab[:, :, 1:], truth_lab[:, :, 1:], AB_MAX - AB_MIN)
    difference = delta_e2000(result_lab, truth_lab)
    faces = detect_faces(truth8)
    face_mask = np.zeros(difference.shape, bool)
    for x, y, width, height in faces:
        face_mask[y : y + height, x : x + width] = True
    return {
        **dict(zip(FIDELITY_NAMES, rgb + ab, strict=True)),
        "delta_e2000": float(difference.mean()),
        "colorfulness_truth": colorfulness(truth8),
        "skin_delta_e2000": float(difference[face_mask].mean()) if faces else None,
        "faces": len(faces),
    }
