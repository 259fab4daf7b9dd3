"""The archive the studio shows: the pipeline's scans under --input, their rows in --output's table, their hints.

Every file the studio serves or writes is found here from a scan's relative path as listed at
start, never from a path a request names, and must lie (symlinks resolved) inside its folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

from pipeline.records import STATUS_OK, metadata_pattern, read_metadata
from pipeline.scans import hints_location, input_base, input_pattern, is_scan_file, printable_path, relative_path

ROW_FIELDS = ("status", "error", "hints", "hint_delta_e2000", "colorfulness", "width", "height")


class NotServed(LookupError):
    """A request for something the studio does not serve: not a listed scan, or a file outside its folders."""


@dataclass(frozen=True)
class ScanFile:
    """One scan of the archive: its relative path (the studio's name for it), real path and table key."""

    relative: str  # below --input, forward slashes, printable (as the table shows it)
    path: str  # the file's real local path (undecodable bytes of a name kept as surrogates)
    source_path: str  # the table's source_path for it


def inside(path: str, folder: str) -> bool:
    """Whether `path`, with every symlink resolved, lies inside `folder` (also resolved)."""
    real, root = os.path.realpath(path), os.path.realpath(folder)
    return real == root or real.startswith(root.rstrip("/") + "/")


def list_scans(input_folder: str, output: str | None) -> list[ScanFile]:
    """The scans a pipeline run over `input_folder` would read (its own match and `is_scan_file`), sorted.

    Left out beside what the pipeline skips: files under --output, and files whose real path
    (a symlink resolved) lies outside --input, which the studio would not serve.
    """
    source = os.path.abspath(input_folder)
    base = input_base(source)
    skipped = os.path.abspath(output).rstrip("/") + "/" if output else None
    root = os.path.realpath(base).rstrip("/") + "/"
    real_folders = {}  # a folder's real path, resolved once for all its files

    def real_path(path: str) -> str:
        if os.path.islink(path):
            return os.path.realpath(path)
        folder, name = os.path.split(path)
        if folder not in real_folders:
            real_folders[folder] = os.path.realpath(folder)
        return os.path.join(real_folders[folder], name)

    scans = []
    for metadata in FileSystems.match([input_pattern(source)])[0].metadata_list:
        path = metadata.path
        if skipped and path.startswith(skipped):
            continue
        printable = printable_path(path)
        relative = relative_path(printable, printable_path(base))
        if is_scan_file(relative) and real_path(path).startswith(root):
            scans.append(ScanFile(relative, path, printable))
    return sorted(scans, key=lambda scan: scan.relative)


class Archive:
    """The scans, the table's row for each (reread when the table changes) and where their hints go."""

    def __init__(self, input_folder: str, hints: str, output: str | None = None):
        self.input = os.path.abspath(input_folder)
        self.hints = os.path.abspath(hints)
        self.output = os.path.abspath(output) if output else None
        self.scans = list_scans(self.input, self.output)
        self._by_relative = {scan.relative: scan for scan in self.scans}
        self._table_key: tuple = ()
        self._rows: dict[str, dict] = {}
        self._hinted: set[str] | None = None

    def scan(self, relative: str) -> ScanFile:
        """A listed scan by its relative path; NotServed for anything else (`..`, absolute paths, unlisted files)."""
        try:
            return self._by_relative[relative]
        except (KeyError, TypeError):
            raise NotServed(f"no scan {relative!r} under --input") from None

    def rows(self) -> dict[str, dict]:
        """The table's row of each scan (by source_path), read again only when --output's table changed."""
        if self.output is None:
            return {}
        tables = FileSystems.match([metadata_pattern(self.output)])[0].metadata_list
        key = tuple(sorted((m.path, m.size_in_bytes, m.last_updated_in_seconds) for m in tables))
        if key != self._table_key:
            rows = read_metadata(self.output).to_pylist() if tables else []
            self._rows = {
                row["source_path"]: {name: row[name] for name in (*ROW_FIELDS, "output_path")} for row in rows
            }
            self._table_key = key
        return self._rows

    def result_path(self, scan: ScanFile) -> str | None:
        """The colorized copy the table names for a scan, if it was colorized and the file lies inside --output."""
        row = self.rows().get(scan.source_path)
        if not row or row["status"] != STATUS_OK or not row["output_path"]:
            return None
        path = row["output_path"]
        return path if inside(path, self.output) and os.path.isfile(path) else None

    def hints_path(self, scan: ScanFile) -> str:
        """Where the scan's hints file is (or goes): the pipeline's own `hints_location`, inside --hints."""
        path = hints_location(self.hints, scan.relative)
        existing = path
        while not os.path.lexists(existing) and existing != self.hints:
            existing = os.path.dirname(existing)
        if not inside(existing, self.hints):
            raise NotServed(f"{path} leads outside --hints {self.hints} (a symbolic link): not read or written")
        return path

    @property
    def hinted(self) -> set[str]:
        """The relative paths of the scans that have a hints file (one walk of --hints, when first asked)."""
        if self._hinted is None:
            files = {os.path.join(folder, name) for folder, _, names in os.walk(self.hints) for name in names}
            self._hinted = {scan.relative for scan in self.scans if hints_location(self.hints, scan.relative) in files}
        return self._hinted
