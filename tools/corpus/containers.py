"""Files stored inside other files of a package: Qt .rcc bundles, Eet archives (.edj), jigzo puzzles (.pzl).

None of these formats has a reader in the registries we may use, so each is read here from its
published layout; each reader returns the contained files by name, as bytes.
"""

from __future__ import annotations

import re
import struct
import zlib

_RCC_NODE = 22  # tree node size in rcc format version >= 2 (14 bytes + 8-byte modification time)
_RCC_DIRECTORY, _RCC_ZLIB, _RCC_ZSTD = 2, 1, 4

_EET_MAGIC = 0x1EE70F42  # EET_MAGIC_FILE2 (eet_lib.c)
_EET_COMPRESSED, _EET_CIPHERED = 1, 2
_EET_LZ4 = (10, 11)  # EET_COMPRESSION_VERYFAST, _SUPERFAST; any other compression level is zlib

_PZL_MAGIC = b"PzlF"
_PZL_FILE = re.compile(rb"([^\n]+)\n(\d+)\n")  # name line, size line


def rcc_files(bundle: bytes) -> dict[str, bytes]:
    """Every file of a Qt binary resource bundle (.rcc) by resource path ("/a/b.webp"), decompressed.

    Header "qres", version, tree/data/names offsets; tree nodes are directories (child count, first child)
    or files (locale, data offset); data blobs are length-prefixed, zlib ones carry qCompress's 4-byte size.
    """
    magic, version, tree, data, names = struct.unpack_from(">4sIIII", bundle)
    if magic != b"qres" or version < 2:
        raise ValueError(f"not a Qt rcc bundle of version >= 2 (magic {magic!r}, version {version})")

    def name(node: int) -> str:
        (offset,) = struct.unpack_from(">I", bundle, tree + node * _RCC_NODE)
        (length,) = struct.unpack_from(">H", bundle, names + offset)
        start = names + offset + 6  # 2-byte length, 4-byte hash
        return bundle[start : start + 2 * length].decode("utf-16-be")

    files: dict[str, bytes] = {}
    pending = [(0, "")]
    while pending:
        node, parent = pending.pop()
        flags, first, second = struct.unpack_from(">HII", bundle, tree + node * _RCC_NODE + 4)
        path = f"{parent}/{name(node)}" if node else ""
        if flags & _RCC_DIRECTORY:
            pending.extend((second + child, path) for child in range(first))
            continue
        (size,) = struct.unpack_from(">I", bundle, data + second)
        blob = bundle[data + second + 4 : data + second + 4 + size]
        if flags & _RCC_ZSTD:
            raise ValueError(f"{path}: zstd-compressed rcc entries are not supported")
        files[path] = zlib.decompress(blob[4:]) if flags & _RCC_ZLIB else blob
    return files


def eet_files(archive: bytes) -> dict[str, bytes]:
    """The entries of an Eet archive (Enlightenment's .edj/.eet) by key ("edje/images/0").

    Header: magic, entry count, dictionary count (big-endian ints); then per entry its offset, stored
    size, data size, key offset, key size (with its NUL) and flags (bit 0 compressed, bit 1 ciphered,
    bits 3+ the compression level). Images of lossy Edje themes are stored as plain JPEG files.
    Ciphered and LZ4-compressed entries are left out: they are never photos in the themes we read.
    """
    magic, count, _ = struct.unpack_from(">3I", archive) if len(archive) >= 12 else (0, 0, 0)
    if magic != _EET_MAGIC:
        raise ValueError(f"not an Eet archive (magic {magic:#x})")
    if 12 + 24 * count > len(archive):
        raise ValueError(f"Eet archive: a directory of {count} entries runs past the end")
    files: dict[str, bytes] = {}
    for entry in range(count):
        offset, size, _, key_offset, key_size, flags = struct.unpack_from(">6I", archive, 12 + 24 * entry)
        if max(offset + size, key_offset + key_size) > len(archive):
            raise ValueError(f"Eet archive: entry {entry} runs past the end")
        key = archive[key_offset : key_offset + key_size].rstrip(b"\0").decode()
        blob = archive[offset : offset + size]
        if flags & _EET_CIPHERED or (flags & _EET_COMPRESSED and (flags >> 3) & 0xFF in _EET_LZ4):
            continue
        files[key] = zlib.decompress(blob) if flags & _EET_COMPRESSED else blob
    return files


def pzl_files(puzzle: bytes) -> dict[str, bytes]:
    """The files of a jigzo puzzle (.pzl) by name: its piece map, thumbnail, alpha mask and texture.

    Four header lines (magic "PzlF", version, title, home page), then per file a line with its
    name, a line with its size in bytes, and the bytes.
    """
    if not puzzle.startswith(_PZL_MAGIC + b"\n"):
        raise ValueError("not a jigzo puzzle (no PzlF header)")
    position = 0
    for _ in range(4):
        position = puzzle.index(b"\n", position) + 1
    files: dict[str, bytes] = {}
    while position < len(puzzle):
        header = _PZL_FILE.match(puzzle, position)
        if header is None:
            raise ValueError(f"jigzo puzzle: no file header at byte {position}")
        start = header.end()
        size = int(header.group(2))
        if start + size > len(puzzle):
            raise ValueError(f"jigzo puzzle: {header.group(1)!r} runs past the end")
        files[header.group(1).decode()] = puzzle[start : start + size]
        position = start + size
    return files
