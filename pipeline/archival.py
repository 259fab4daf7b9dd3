"""A colorized scan as an archival derivative: its scan's EXIF, IPTC and XMP carried over, an ICC
profile, and the standard fields that say a model colorized it. Written with exiv2 (python-exiv2).

In `pipeline`, not `transforms`: this is about files and a run's provenance (the source, the model,
the options), not image math, and it needs a metadata library, not NumPy or OpenCV.

What is carried, added and dropped is in docs/archival.md. In short: EXIF (its Orientation made 1
where the pixels were turned upright, its pixel dimensions made the output's; thumbnail, maker notes
and the tags that describe the source file's own structure dropped), IPTC IIM and XMP as they were;
added: `Iptc4xmpExt:DigitalSourceType` (compositeWithTrainedAlgorithmicMedia), `xmp:CreatorTool`, an
`xmpMM:History` event with the model and options, `xmpMM:DerivedFrom` naming the scan (its path, its
sha256, its DocumentID), and new document and instance IDs. What a format cannot hold is a warning.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass
from importlib import metadata as package_metadata

import exiv2

ARCHIVAL_VERSION = 1  # recorded in receipts: outputs written before metadata was carried are made again
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
NAMESPACE, PREFIX = "https://github.com/revivacolor/revivacolor/ns/1.0/", "revivacolor"  # sha256 of DerivedFrom
KINDS = ("exif", "iptc", "xmp")
# EXIF groups carried: the image's own tags, the photo's, GPS and interoperability. Maker notes (their
# own groups, and Exif.Photo.MakerNote) and the thumbnail (Exif.Thumbnail) are dropped.
_EXIF_GROUPS = frozenset({"Image", "Photo", "GPSInfo", "Iop"})
# Tags that describe the source file's own pixels and layout, or hold metadata written apart here
# (ICC, XMP, IPTC, Photoshop resources): they would be false in the output.
_STRUCTURE_TAGS = frozenset(
    "Exif.Image." + name
    for name in (
        "NewSubfileType SubfileType ImageWidth ImageLength BitsPerSample Compression PhotometricInterpretation "
        "FillOrder StripOffsets SamplesPerPixel RowsPerStrip StripByteCounts PlanarConfiguration Predictor "
        "TileWidth TileLength TileOffsets TileByteCounts SubIFDs ExtraSamples SampleFormat JPEGInterchangeFormat "
        "JPEGInterchangeFormatLength YCbCrCoefficients YCbCrSubSampling YCbCrPositioning InterColorProfile "
        "XMLPacket IPTCNAA ImageResources"
    ).split()
) | {"Exif.Photo.MakerNote", "Exif.Photo.PixelXDimension", "Exif.Photo.PixelYDimension"}
_NO_METADATA_FORMATS = {"bmp": "BMP holds no metadata: written without EXIF, IPTC, XMP, ICC profile or label"}
_NO_IPTC_FORMATS = {"webp"}  # exiv2 writes no IPTC IIM into WebP

logging.getLogger("exiv2").setLevel(logging.CRITICAL)  # its complaints about a scan become the row's warnings
exiv2.XmpParser.initialize()  # once, on import: exiv2's XMP toolkit must be set up before threads use it
exiv2.XmpProperties.registerNs(NAMESPACE, PREFIX)


def software_version() -> str:
    """RevivaColor's version, as installed."""
    try:
        return package_metadata.version("revivacolor")
    except package_metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class SourceMetadata:
    """A scan's metadata as read, picklable for Beam: EXIF and IPTC in an exiv2 `.exv` blob, XMP as text."""

    exif_iptc: bytes | None  # an Exiv2 metadata file (.exv) holding the EXIF and IPTC to carry
    kinds: tuple[str, ...]  # which of KINDS the scan had (and that could be read)
    xmp_packet: str | None
    document_id: str | None
    instance_id: str | None
    upright_turned: bool  # the decoder turned the pixels by the EXIF orientation (JPEG)
    warnings: tuple[str, ...] = ()


NO_METADATA = SourceMetadata(None, (), None, None, None, False)


@dataclass(frozen=True)
class Colorization:
    """What was done to one scan, for its label: the model, the options, the source."""

    source_name: str  # its path below --input
    source_sha256: str
    model: str
    model_version: str
    model_sha256: str | None
    known_colors: int
    vividness: float
    when: str  # ISO 8601, UTC
    output_profile: str = "srgb"  # --output_profile

    def parameters(self) -> str:
        """The History event's parameters, in words."""
        sha = f", sha256 {self.model_sha256}" if self.model_sha256 else ""
        return (
            f"colorized by model {self.model} {self.model_version}{sha}; known colors: {self.known_colors}; "
            f"vividness: {self.vividness:g}; output profile: {self.output_profile}"
        )


def read_source_metadata(data: bytes, upright_turned: bool) -> SourceMetadata:
    """The EXIF, IPTC and XMP of a scan's file; what cannot be read is left out with a warning."""
    try:
        image = exiv2.ImageFactory.open(data)
        image.readMetadata()
    except exiv2.Exiv2Error as error:  # exiv2 refuses the whole file for one bad block (an invalid ICC profile)
        if error.args and error.args[0] == exiv2.ErrorCode.kerMemoryContainsUnknownImageType:
            return dataclasses.replace(NO_METADATA, upright_turned=upright_turned)  # PNM and such: no metadata
        warning = f"EXIF, IPTC and XMP not readable (exiv2: {_message(error)}): only the label written"
        return SourceMetadata(None, (), None, None, None, upright_turned, (warning,))
    warnings, kinds = [], []
    exif = _carried_exif(image.exifData())
    iptc = image.iptcData()
    carrier = None
    if exif.count() or iptc.count():
        try:
            exv = exiv2.ImageFactory.create(exiv2.ImageType.exv)
            exv.setExifData(exif)
            exv.setIptcData(iptc)
            exv.writeMetadata()
            carrier = _bytes_of(exv)
            kinds += [kind for kind, data_set in (("exif", exif), ("iptc", iptc)) if data_set.count()]
        except exiv2.Exiv2Error as error:
            warnings.append(f"EXIF and IPTC not carried (exiv2: {_message(error)})")
    packet, xmp = image.xmpPacket(), image.xmpData()
    if packet.strip() and not xmp.count():
        warnings.append(f"XMP not readable (malformed, {len(packet.encode())} bytes): dropped")
        packet = None
    elif xmp.count():
        kinds.append("xmp")
    else:
        packet = None
    return SourceMetadata(
        exif_iptc=carrier,
        kinds=tuple(kinds),
        xmp_packet=packet,
        document_id=_text(xmp, "Xmp.xmpMM.DocumentID"),
        instance_id=_text(xmp, "Xmp.xmpMM.InstanceID"),
        upright_turned=upright_turned,
        warnings=tuple(warnings),
    )


def _message(error: exiv2.Exiv2Error) -> str:
    """exiv2's own words for an error (its args are the error code and the message)."""
    return str(error.args[-1]) if error.args else type(error).__name__


def _carried_exif(exif: exiv2.ExifData) -> exiv2.ExifData:
    """The EXIF worth carrying: no thumbnail, no maker notes, no tags of the source file's structure."""
    carried = exiv2.ExifData()
    for datum in exif:
        key = datum.key()
        if key.split(".")[1] in _EXIF_GROUPS and key not in _STRUCTURE_TAGS:
            carried.add(datum)
    return carried


def _text(xmp: exiv2.XmpData, key: str) -> str | None:
    found = xmp.findKey(exiv2.XmpKey(key))
    return None if found == xmp.end() else str(found.toString())


def _bytes_of(image: exiv2.Image) -> bytes:
    io = image.io()
    io.open()
    try:
        return bytes(io.mmap())
    finally:
        io.munmap()
        io.close()


@dataclass(frozen=True)
class ArchivalResult:
    """The encoded image with its metadata, which of KINDS of the scan it carries, and warnings."""

    encoded: bytes
    kept: tuple[str, ...]
    warnings: tuple[str, ...]


def write_archival_metadata(
    encoded: bytes,
    image_format: str,
    source: SourceMetadata,
    colorization: Colorization,
    icc_profile: bytes,
    size: tuple[int, int],
) -> ArchivalResult:
    """`encoded` (an image OpenCV wrote, with no metadata) with the scan's metadata, the profile and the label.

    `size` is the output's (width, height). What exiv2 cannot write is left out, the scan's XMP first,
    then its EXIF, then its IPTC (a JPEG segment holds at most 64 KB), and the row says so; the
    label, small, is written in any case. Should even that fail, the image is kept without metadata.
    """
    if image_format in _NO_METADATA_FORMATS:
        return ArchivalResult(encoded, (), (_NO_METADATA_FORMATS[image_format],))
    warnings, last_error = [], None
    order = [kind for kind in ("xmp", "exif", "iptc") if kind in source.kinds]
    for dropped in (order[:count] for count in range(len(order) + 1)):
        try:
            written = _write(encoded, source, colorization, icc_profile, size, skip=set(dropped))
            break
        except exiv2.Exiv2Error as error:
            last_error = error
    else:
        return ArchivalResult(encoded, (), (f"metadata not written (exiv2: {_message(last_error)})",))
    if dropped:
        reason = _message(last_error)
        warnings.append(f"{', '.join(dropped)} of the scan not written into {image_format} ({reason}): dropped")
    kept = tuple(kind for kind in source.kinds if kind not in dropped)
    if "iptc" in kept and image_format in _NO_IPTC_FORMATS:
        warnings.append(f"{image_format} holds no IPTC IIM: dropped (the XMP copy of its fields, if any, is kept)")
        kept = tuple(kind for kind in kept if kind != "iptc")
    return ArchivalResult(written, kept, tuple(warnings))


def _write(
    encoded: bytes,
    source: SourceMetadata,
    colorization: Colorization,
    icc_profile: bytes,
    size: tuple[int, int],
    skip: set[str],
) -> bytes:
    image = exiv2.ImageFactory.open(encoded)
    image.readMetadata()
    if source.exif_iptc is not None and {"exif", "iptc"} - skip:
        carried = exiv2.ImageFactory.open(source.exif_iptc)
        carried.readMetadata()
        if "exif" not in skip:
            image.setExifData(_output_exif(carried.exifData(), source.upright_turned, size))
        if "iptc" not in skip:
            image.setIptcData(carried.iptcData())
    image.setXmpData(_labeled_xmp(None if "xmp" in skip else source.xmp_packet, source, colorization))
    image.setIccProfile(exiv2.DataBuf(icc_profile))
    image.writeMetadata()
    return _bytes_of(image)


def _output_exif(exif: exiv2.ExifData, upright_turned: bool, size: tuple[int, int]) -> exiv2.ExifData:
    """The carried EXIF made true of the output: its orientation and pixel dimensions."""
    if upright_turned or "Exif.Image.Orientation" not in exif:
        exif["Exif.Image.Orientation"] = 1
    if exif.count() > 1:  # more than the orientation: a real EXIF block, so its dimensions are stated
        exif["Exif.Photo.PixelXDimension"] = size[0]
        exif["Exif.Photo.PixelYDimension"] = size[1]
    return exif


def _labeled_xmp(packet: str | None, source: SourceMetadata, colorization: Colorization) -> exiv2.XmpData:
    """The scan's XMP (if any) with the colorization label, the History event and DerivedFrom added."""
    if packet:
        sidecar = exiv2.ImageFactory.open(packet.encode())
        sidecar.readMetadata()
        xmp = sidecar.xmpData()
    else:
        xmp = exiv2.XmpData()
    agent = f"RevivaColor {software_version()}"
    xmp["Xmp.iptcExt.DigitalSourceType"] = DIGITAL_SOURCE_TYPE
    xmp["Xmp.xmp.CreatorTool"] = agent
    xmp["Xmp.xmp.MetadataDate"] = colorization.when
    xmp["Xmp.xmp.ModifyDate"] = colorization.when
    original = _text(xmp, "Xmp.xmpMM.OriginalDocumentID") or source.document_id
    if original:  # the scan's own; none is made up for a scan that had none
        xmp["Xmp.xmpMM.OriginalDocumentID"] = original
    xmp["Xmp.xmpMM.DocumentID"] = f"xmp.did:{uuid.uuid4()}"
    xmp["Xmp.xmpMM.InstanceID"] = f"xmp.iid:{uuid.uuid4()}"
    _replace_struct(xmp, "Xmp.xmpMM.DerivedFrom")
    derived = {
        "stRef:filePath": colorization.source_name,
        "stRef:documentID": source.document_id,
        "stRef:instanceID": source.instance_id,
        f"{PREFIX}:sha256": colorization.source_sha256,
    }
    for field, value in derived.items():
        if value:
            xmp[f"Xmp.xmpMM.DerivedFrom/{field}"] = value
    event = _next_history_event(xmp)
    for field, value in (
        ("action", "derived"),
        ("when", colorization.when),
        ("softwareAgent", agent),
        ("changed", "/"),
        ("parameters", colorization.parameters()),
    ):
        xmp[f"Xmp.xmpMM.History[{event}]/stEvt:{field}"] = value
    return xmp


def _replace_struct(xmp: exiv2.XmpData, key: str) -> None:
    """Remove `key` and its fields, then add it again as an empty struct."""
    for stale in [datum.key() for datum in xmp if datum.key() == key or datum.key().startswith(key + "/")]:
        xmp.erase(xmp.findKey(exiv2.XmpKey(stale)))
    struct = exiv2.XmpTextValue()
    struct.setXmpStruct()
    xmp.add(exiv2.XmpKey(key), struct)


def _next_history_event(xmp: exiv2.XmpData) -> int:
    """The index (from 1) of a new event at the end of xmpMM:History, creating the sequence if needed."""
    prefix = "Xmp.xmpMM.History["
    indices = [int(datum.key()[len(prefix) :].split("]")[0]) for datum in xmp if datum.key().startswith(prefix)]
    if not indices:
        if "Xmp.xmpMM.History" in xmp:
            xmp.erase(xmp.findKey(exiv2.XmpKey("Xmp.xmpMM.History")))
        sequence = exiv2.XmpTextValue()
        sequence.setXmpArrayType(exiv2.XmpValue.XmpArrayType.xaSeq)
        xmp.add(exiv2.XmpKey("Xmp.xmpMM.History"), sequence)
    return max(indices, default=0) + 1
