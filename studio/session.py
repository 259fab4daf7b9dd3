"""What the studio does, apart from HTTP: the gallery's pages, a scan's hints, its preview, saving.

Previews use the pipeline's own code (`pipeline.preview`), hints are checked by the pipeline's
own reader (`pipeline.scans.with_hints`) and written in its documented format.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections import Counter, OrderedDict

from models.registry import ModelSpec
from pipeline.preview import Preview, PreviewScan, colorize_preview, open_preview
from pipeline.records import STATUS_ERROR, write_atomically
from pipeline.scans import HintsFile, Scan, prepare_scan, with_hints
from studio.archive import Archive, NotServed, ScanFile
from studio.images import Thumbnails
from transforms.hints import MAX_POINTS_PER_FILE

SHOWN = ("all", "hinted", "unhinted", "errors", "not_run")
ORDERS = ("name", "hint_delta_e2000", "colorfulness", "status")
DECODED_SCANS_KEPT = 2  # the scan being edited and the one before: a 12,000 x 9,000 scan holds about 0.5 GB
PALETTE_SIZE = 24


def hints_document(points: list) -> bytes:
    """A hints file in the documented format, one point a line: {"points": [{"x": ..., "color": ...}, ...]}."""
    lines = ",\n".join("  " + json.dumps(point, separators=(", ", ": ")) for point in points)
    return ('{"points": [\n' + lines + "\n]}\n" if points else '{"points": []}\n').encode()


class Studio:
    """One archive, one model: everything the web app asks of the pipeline's code."""

    def __init__(
        self,
        archive: Archive,
        spec: ModelSpec,
        model,
        cache_folder: str,
        vividness: float = 1.0,
        mirror_average: bool = True,
    ):
        self.archive, self.spec, self._model = archive, spec, model
        self.thumbnails = Thumbnails(cache_folder)
        self.vividness, self.mirror_average = vividness, mirror_average
        self._decoded: OrderedDict[str, Scan] = OrderedDict()
        self._opened: OrderedDict[tuple[str, int], PreviewScan] = OrderedDict()  # the latest scans' previews
        self._lock = threading.Lock()  # one decode or model call at a time: they take the cores anyway
        self._palette: Counter | None = None

    # The gallery

    def ordered(self, shown: str, order: str) -> list[ScanFile]:
        """The scans the gallery shows (`shown`, one of SHOWN) in the order asked for (one of ORDERS)."""
        if shown not in SHOWN or order not in ORDERS:
            raise ValueError(f"show must be one of {', '.join(SHOWN)} and sort one of {', '.join(ORDERS)}")
        rows = self.archive.rows()
        keep = {
            "all": lambda scan: True,
            "hinted": lambda scan: scan.relative in self.archive.hinted,
            "unhinted": lambda scan: scan.relative not in self.archive.hinted,
            "errors": lambda scan: rows.get(scan.source_path, {}).get("status") == STATUS_ERROR,
            "not_run": lambda scan: scan.source_path not in rows,
        }[shown]
        scans = [scan for scan in self.archive.scans if keep(scan)]
        if order == "name":
            return scans

        def largest_first(scan: ScanFile) -> tuple:
            row = rows.get(scan.source_path, {})
            value = row.get(order) if order != "status" else {STATUS_ERROR: 1.0}.get(row.get("status"), 0.0)
            return (value is None, -(value or 0.0), scan.relative)  # no value last

        return sorted(scans, key=largest_first)

    def gallery(self, shown: str, order: str, offset: int, limit: int) -> dict:
        """One page of the gallery: each scan with what the table says of it and whether it has hints now."""
        scans = self.ordered(shown, order)
        rows = self.archive.rows()
        items = []
        for scan in scans[offset : offset + limit]:
            row = rows.get(scan.source_path)
            items.append(
                {
                    "relative": scan.relative,
                    "hints_file": self._has_hints_file(scan),
                    "result": self.archive.result_path(scan) is not None,
                    "row": _json_row(row),
                }
            )
        return {"total": len(scans), "scans": len(self.archive.scans), "offset": offset, "items": items}

    def _has_hints_file(self, scan: ScanFile) -> bool:
        try:
            return os.path.isfile(self.archive.hints_path(scan))
        except NotServed:
            return False

    def neighbour(self, relative: str, shown: str, order: str, step: int) -> str | None:
        """The scan before (-1) or after (+1) this one in the gallery's order; None at either end."""
        scans = [scan.relative for scan in self.ordered(shown, order)]
        if relative not in scans:
            return scans[0] if scans else None
        index = scans.index(relative) + step
        return scans[index] if 0 <= index < len(scans) else None

    # One scan

    def decoded(self, relative: str) -> Scan:
        """The scan decoded and prepared as the pipeline prepares it (kept for the next requests)."""
        scan_file = self.archive.scan(relative)
        with self._lock:
            if relative in self._decoded:
                self._decoded.move_to_end(relative)
                return self._decoded[relative]
            with open(scan_file.path, "rb") as handle:
                data = handle.read()
            scan = prepare_scan(
                scan_file.source_path,
                relative,
                "",
                data,
                hashlib.sha256(data).hexdigest(),
                self.spec.input_size,
                keep_truth=False,
            )
            self._decoded[relative] = scan
            while len(self._decoded) > DECODED_SCANS_KEPT:
                self._decoded.popitem(last=False)
            return scan

    def hints(self, relative: str) -> dict:
        """The scan's hints file as the editor starts from it: its points, or the error the pipeline would give."""
        scan_file = self.archive.scan(relative)
        location = self.archive.hints_path(scan_file)
        if not os.path.isfile(location):
            return {"location": location, "exists": False, "points": [], "error": None}
        with open(location, "rb") as handle:
            data = handle.read()
        scan = self.decoded(relative)
        try:
            with_hints(scan, HintsFile(location, data, ""))
        except ValueError as error:
            return {"location": location, "exists": True, "points": [], "error": str(error)}
        return {"location": location, "exists": True, "points": json.loads(data)["points"], "error": None}

    def describe(self, relative: str) -> dict:
        """What the editor needs of a scan: its size, its row in the table, its hints."""
        scan_file = self.archive.scan(relative)
        scan = self.decoded(relative)
        return {
            "relative": relative,
            "width": scan.width,
            "height": scan.height,
            "result": self.archive.result_path(scan_file) is not None,
            "row": _json_row(self.archive.rows().get(scan_file.source_path)),
            "hints": self.hints(relative),
            "model": f"{self.spec.name} v{self.spec.version}",
        }

    def _hints_file(self, relative: str, points: list) -> HintsFile:
        if not isinstance(points, list):
            raise ValueError('expected {"path": ..., "points": [...]}')
        if len(points) > MAX_POINTS_PER_FILE:
            raise ValueError(f"{len(points)} points, more than the {MAX_POINTS_PER_FILE} a hints file may hold")
        data = hints_document(points)
        location = self.archive.hints_path(self.archive.scan(relative))
        return HintsFile(location, data, hashlib.sha256(data).hexdigest())

    def preview(self, relative: str, points: list, max_side: int) -> Preview:
        """The scan colorized with these points, by the pipeline's code, fitted into max_side."""
        hints_file = self._hints_file(relative, points)
        scan = self.decoded(relative)
        with self._lock:
            opened = self._opened.get((relative, max_side))
            if opened is None or opened.scan is not scan:
                opened = open_preview(scan, max_side)
                self._opened[(relative, max_side)] = opened
                while len(self._opened) > DECODED_SCANS_KEPT:
                    self._opened.popitem(last=False)
            return colorize_preview(self._model, self.spec, opened, hints_file, self.vividness, self.mirror_average)

    def save(self, relative: str, points: list) -> dict:
        """Write the scan's hints file (atomically), after the pipeline's own checks of it."""
        hints_file = self._hints_file(relative, points)
        with_hints(self.decoded(relative), hints_file)  # what the pipeline would refuse is not written
        write_atomically(hints_file.location, hints_file.data)
        self.archive.hinted.add(relative)
        self._palette = None
        return {"location": hints_file.location, "points": len(points), "sha256": hints_file.sha256}

    def palette(self) -> list[str]:
        """The colors of this archive's hints files, the most used first."""
        if self._palette is None:
            counts: Counter = Counter()
            for relative in sorted(self.archive.hinted):
                try:
                    with open(self.archive.hints_path(self.archive.scan(relative)), "rb") as handle:
                        points = json.loads(handle.read())["points"]
                    counts.update(point["color"].lower() for point in points if isinstance(point, dict))
                except (OSError, LookupError, ValueError, TypeError, AttributeError):
                    continue  # a malformed file has no colors to offer; the gallery shows its error
            self._palette = counts
        return [color for color, _ in self._palette.most_common(PALETTE_SIZE)]


def _json_row(row: dict | None) -> dict | None:
    """A table row for JSON: numbers that are not finite (an infinite PSNR) as null."""
    if row is None:
        return None
    return {
        key: None if isinstance(value, float) and not math.isfinite(value) else value
        for key, value in row.items()
        if key != "output_path"
    }
