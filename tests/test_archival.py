"""Archival outputs, end to end: real scans carrying real ICC profiles (Debian's icc-profiles-free) and a
catalog record in EXIF, IPTC and XMP, hostile ones among them, through the real pipeline with signing;
exiftool, an independent reader, and c2pa's own reader check what was written."""

from __future__ import annotations

import datetime
import io
import json
import shutil
import subprocess
from pathlib import Path

import c2pa
import cv2
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image, PngImagePlugin

import pipeline
from pipeline.archival import DIGITAL_SOURCE_TYPE, Colorization, read_source_metadata, write_archival_metadata
from pipeline.records import read_metadata
from pipeline.scans import finish_scan, prepare_scan
from tests.conftest import write_image
from transforms.icc import profile_lightness, srgb_profile
from transforms.lab import luminance

PROFILES = Path("/usr/share/color/icc")
needs_exiftool = pytest.mark.skipif(
    shutil.which("exiftool") is None,
    reason="exiftool not installed (Debian libimage-exiftool-perl; ./run_tests.sh installs it when root)",
)
needs_profiles = pytest.mark.skipif(
    not (PROFILES / "Gray-CIE_L.icc").exists(),
    reason="ICC profiles not installed (Debian icc-profiles-free; ./run_tests.sh installs it when root)",
)
pytestmark = [needs_exiftool, needs_profiles]

CATALOG = [
    "-Artist=Studio Harlan",
    "-Copyright=(c) City Archive",
    "-ImageDescription=Harbour, 1921",
    "-DateTimeOriginal=1921:05:01 10:00:00",
    "-IPTC:Caption-Abstract=Harbour, 1921",
    "-IPTC:By-line=Studio Harlan",
    "-IPTC:CopyrightNotice=(c) City Archive",
    "-IPTC:ObjectName=ACC-1921-044",
    "-XMP-dc:Description=Harbour, 1921",
    "-XMP-dc:Creator=Studio Harlan",
    "-XMP-dc:Rights=(c) City Archive",
    "-XMP-xmpMM:DocumentID=xmp.did:accession-1921-044",
]


def exiftool(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(["exiftool", *arguments], capture_output=True, text=True, check=True)


def tags(path: Path) -> dict:
    """Every tag exiftool reads in a file, by group:name."""
    return json.loads(exiftool("-j", "-G1", "-a", "-n", str(path)).stdout)[0]


def xmp_packet(description: str, document_id: str = "xmp.did:big") -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/" '
        f'xmpMM:DocumentID="{document_id}"><dc:description><rdf:Alt><rdf:li xml:lang="x-default">{description}'
        '</rdf:li></rdf:Alt></dc:description></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def gray_ramp(height: int, width: int, darkest: int = 0, lightest: int = 255) -> np.ndarray:
    return np.tile(np.linspace(darkest, lightest, width).round().astype(np.uint8), (height, 1))


def throwaway_chain(folder: Path) -> tuple[Path, Path, Path]:
    """A root CA and a signing certificate it issued (EC P-256, as C2PA asks): chain, key, root."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject, issuer, public_key, signing_key, is_ca):
        usage = dict.fromkeys(
            ["content_commitment", "key_encipherment", "data_encipherment", "key_agreement"]
            + ["encipher_only", "decipher_only"],
            False,
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(digital_signature=not is_ca, key_cert_sign=is_ca, crl_sign=is_ca, **usage),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        if not is_ca:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            ).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False
            )
        return builder.sign(signing_key, hashes.SHA256())

    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = certificate("Test Archive Root", "Test Archive Root", root_key.public_key(), root_key, True)
    signer = certificate("Test Archive Signer", "Test Archive Root", key.public_key(), root_key, False)
    pem = serialization.Encoding.PEM
    (folder / "chain.pem").write_bytes(signer.public_bytes(pem) + root.public_bytes(pem))
    (folder / "root.pem").write_bytes(root.public_bytes(pem))
    (folder / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder / "chain.pem", folder / "key.pem", folder / "root.pem"


@pytest.fixture(scope="module")
def scans(tmp_path_factory) -> Path:
    """Real files as archives hold them, each with a real profile and metadata, and the hostile ones."""
    folder = tmp_path_factory.mktemp("scans")
    # A gray JPEG in Gray-CIE_L with its catalog record, a thumbnail and EXIF orientation 6 (turned on display).
    catalog = write_image(folder / "catalog.jpg", gray_ramp(24, 40, 60, 200))  # the midtones of a print
    thumbnail = write_image(folder.parent / "thumb.jpg", gray_ramp(6, 10))
    exiftool(
        "-q", "-overwrite_original", f"-ICC_Profile<={PROFILES / 'Gray-CIE_L.icc'}", "-Orientation#=6",
        f"-ThumbnailImage<={thumbnail}", *CATALOG, str(catalog),
    )  # fmt: skip
    # A toned 16-bit RGB TIFF master in Adobe RGB with the same record.
    sepia = np.stack([gray_ramp(20, 30).astype(np.uint16) * 257 * scale // 100 for scale in (70, 85, 100)], -1)
    master = write_image(folder / "master.tiff", sepia)
    exiftool("-q", "-overwrite_original", f"-ICC_Profile<={PROFILES / 'compatibleWithAdobeRGB1998.icc'}", *CATALOG,
             str(master))  # fmt: skip
    # A PNG with a linear-gray iCCP and its XMP in iTXt; one with a 200 KB XMP packet.
    text = PngImagePlugin.PngInfo()
    text.add_itxt("XML:com.adobe.xmp", xmp_packet("Harbour, 1921", "xmp.did:png").decode())
    Image.fromarray(gray_ramp(16, 20)).save(folder / "itxt.png", pnginfo=text,
                                           icc_profile=(PROFILES / "Gray.icc").read_bytes())  # fmt: skip
    big = PngImagePlugin.PngInfo()
    big.add_itxt("XML:com.adobe.xmp", xmp_packet("x" * 200_000).decode())
    Image.fromarray(gray_ramp(16, 20)).save(folder / "big-xmp.png", pnginfo=big)
    # Hostile: a corrupt profile, a malformed XMP packet, a gray profile on a color scan; BMP and WebP.
    Image.fromarray(gray_ramp(16, 20)).save(folder / "corrupt-icc.jpg", icc_profile=b"not an ICC profile" * 20)
    Image.fromarray(gray_ramp(16, 20)).save(folder / "bad-xmp.jpg", xmp=b"<x:xmpmeta><rdf:RDF><broken")
    Image.fromarray(np.repeat(gray_ramp(16, 20)[..., None], 3, -1)).save(
        folder / "gray-profile.tiff", icc_profile=(PROFILES / "Gray.icc").read_bytes()
    )
    write_image(folder / "plain.bmp", gray_ramp(16, 20))
    Image.fromarray(np.repeat(gray_ramp(16, 20)[..., None], 3, -1)).save(
        folder / "toned.webp", lossless=True, xmp=xmp_packet("Harbour, 1921"),
        icc_profile=(PROFILES / "sRGB.icc").read_bytes(),
    )  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def colorized(scans, tmp_path_factory, tiny_model) -> tuple[Path, dict, Path]:
    """The archive through the real pipeline, signed with a throwaway certificate; (output, rows, root)."""
    keys = tmp_path_factory.mktemp("keys")
    chain, key, root = throwaway_chain(keys)
    output = tmp_path_factory.mktemp("colorized") / "out"
    arguments = ["--input", str(scans), "--output", str(output), "--model", str(tiny_model)]
    pipeline.run([*arguments, "--c2pa_cert", str(chain), "--c2pa_key", str(key)])
    rows = {Path(row["source_path"]).name: row for row in read_metadata(str(output)).to_pylist()}
    return output, rows, root


def test_every_scan_keeps_its_image_and_gets_a_clear_row(colorized):
    _, rows, _ = colorized
    assert all(row["status"] == "ok" for row in rows.values()), rows
    assert rows["catalog.jpg"]["icc_profile"] == "Gray CIE*L"
    assert rows["master.tiff"]["icc_profile"] == "Compatible with Adobe RGB (1998)"
    assert rows["itxt.png"]["icc_profile"] == "Gray"
    assert rows["toned.webp"]["icc_profile"] == "sRGB"
    assert rows["catalog.jpg"]["metadata_kept"] == rows["master.tiff"]["metadata_kept"] == "exif,iptc,xmp"
    assert rows["itxt.png"]["metadata_kept"] == rows["big-xmp.png"]["metadata_kept"] == "xmp"
    assert rows["catalog.jpg"]["warnings"] is None and rows["master.tiff"]["warnings"] is None
    assert rows["corrupt-icc.jpg"]["icc_profile"] is None
    assert rows["corrupt-icc.jpg"]["warnings"].startswith("ICC profile not readable")
    assert rows["corrupt-icc.jpg"]["warnings"].endswith(
        "read as sRGB; EXIF, IPTC and XMP not readable (exiv2: Not a valid ICC Profile): only the label written"
    )
    assert rows["bad-xmp.jpg"]["warnings"].startswith("XMP not readable (malformed, 27 bytes): dropped")
    assert rows["gray-profile.tiff"]["icc_profile"] == "Gray"
    assert rows["gray-profile.tiff"]["warnings"] == "ICC profile is for GRAY, not for this color scan: read as sRGB"
    assert rows["plain.bmp"]["warnings"].startswith("BMP holds no metadata")
    assert rows["plain.bmp"]["metadata_kept"] == "" and rows["plain.bmp"]["c2pa"] is None


def test_the_catalog_record_is_carried_and_made_true_of_the_output(colorized, scans):
    output, rows, _ = colorized
    for name in ("catalog.jpg", "master.tiff"):
        written = tags(output / name)
        assert written["IFD0:Artist"] == written["XMP-dc:Creator"] == written["IPTC:By-line"] == "Studio Harlan"
        assert written["IFD0:Copyright"] == written["XMP-dc:Rights"] == "(c) City Archive"
        assert written["IPTC:CopyrightNotice"] == "(c) City Archive"
        assert written["IFD0:ImageDescription"] == written["IPTC:Caption-Abstract"] == "Harbour, 1921"
        assert written["XMP-dc:Description"] == "Harbour, 1921"
        assert written["IPTC:ObjectName"] == "ACC-1921-044"
        assert written["ExifIFD:DateTimeOriginal"] == "1921:05:01 10:00:00"
        assert written["IFD0:Orientation"] == 1
        assert (written["ExifIFD:ExifImageWidth"], written["ExifIFD:ExifImageHeight"]) == (
            rows[name]["width"],
            rows[name]["height"],
        )
        assert not any(key.startswith(("IFD1:", "MakerNotes")) for key in written)  # no thumbnail, no maker notes
    assert "IFD1:ThumbnailImage" in tags(scans / "catalog.jpg")  # the scan had one
    catalog = tags(output / "catalog.jpg")
    assert (catalog["File:ImageWidth"], catalog["File:ImageHeight"]) == (24, 40)  # turned upright: 40 x 24 stood up
    master = tags(output / "master.tiff")
    assert master["IFD0:BitsPerSample"] == "16 16 16" and master["IFD0:ImageWidth"] == 30
    assert cv2.imread(str(output / "master.tiff"), cv2.IMREAD_UNCHANGED).dtype == np.uint16


def test_every_output_but_bmp_is_labeled_as_a_colorization_with_an_srgb_profile(colorized, scans):
    output, rows, _ = colorized
    for name, row in rows.items():
        written = tags(Path(row["output_path"]))
        if name == "plain.bmp":
            assert not any(key.startswith(("XMP", "ICC", "IFD0")) for key in written)
            continue
        assert written["XMP-iptcExt:DigitalSourceType"] == DIGITAL_SOURCE_TYPE, name
        assert written["XMP-xmp:CreatorTool"].startswith("RevivaColor ")
        assert written["ICC_Profile:ProfileDescription"] == "sRGB built-in"
        assert written["XMP-xmpMM:HistoryAction"] == "derived"
        assert written["XMP-xmpMM:HistorySoftwareAgent"] == written["XMP-xmpMM:HistorySoftwareAgent"]
        assert "colorized by model tiny test" in written["XMP-xmpMM:HistoryParameters"]
        assert "known colors: 0; vividness: 1" in written["XMP-xmpMM:HistoryParameters"]
        assert written["XMP-xmpMM:DerivedFromFilePath"] == name
        assert written["XMP-xmpMM:DerivedFromSha256"] == row["source_sha256"]
    assert tags(output / "catalog.jpg")["XMP-xmpMM:DerivedFromDocumentID"] == "xmp.did:accession-1921-044"
    big = tags(output / "big-xmp.png")
    assert len(big["XMP-dc:Description"]) == 200_000  # a PNG holds it whole
    assert "IPTC:Caption-Abstract" not in tags(output / "toned.webp")  # WebP holds no IPTC; its XMP is there


def test_png_profile_chunk_is_named_so_libpng_reads_it(colorized):
    output, _, _ = colorized
    with Image.open(output / "itxt.png") as image:
        assert image.info["icc_profile"] == srgb_profile()
    assert b"iCCPICC Profile\x00" in (output / "itxt.png").read_bytes()


def test_a_gray_cie_l_scan_keeps_its_true_lightness(colorized, scans):
    """Gray-CIE_L stores L itself (value / 255 * 100): the output's L must be that, not sRGB's reading of it."""
    output, _, _ = colorized
    scan = cv2.imread(str(scans / "catalog.jpg"), cv2.IMREAD_GRAYSCALE)  # turned upright, as the pipeline does
    true_lightness = scan.astype(np.float64) * 100 / 255
    written = luminance(cv2.imread(str(output / "catalog.jpg")))
    managed = np.abs(written - true_lightness).mean()
    assumed_srgb = np.abs(luminance(scan) - true_lightness).mean()
    print(f"mean |L difference|: {managed:.3f} color managed, {assumed_srgb:.3f} read as sRGB")
    assert managed < 1.0 < 2.5 < assumed_srgb


def test_outputs_carry_content_credentials_that_c2pa_validates(colorized):
    _, rows, root = colorized
    settings = {"verify": {"verify_trust": True}, "trust": {"trust_anchors": root.read_text()}}
    for name, row in rows.items():
        if name == "plain.bmp":
            continue
        mime = {"jpg": "image/jpeg", "png": "image/png", "tiff": "image/tiff", "webp": "image/webp"}[
            name.rpartition(".")[2].replace("jpeg", "jpg")
        ]
        with open(row["output_path"], "rb") as handle:
            reader = c2pa.Reader(mime, io.BytesIO(handle.read()), context=c2pa.Context.from_dict(settings))
        assert reader.get_validation_state() == "Trusted", (name, reader.get_validation_results())
        manifest = reader.get_active_manifest()
        assert manifest["label"] == row["c2pa"]
        actions = next(a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions"))["data"]["actions"]
        assert [action["action"] for action in actions] == ["c2pa.opened", "c2pa.color_adjustments"]
        assert actions[1]["digitalSourceType"].endswith("/trainedAlgorithmicMedia")
        assert actions[1]["softwareAgent"]["name"] == "RevivaColor"
        assert manifest["ingredients"][0]["relationship"] == "parentOf" and manifest["ingredients"][0]["title"] == name


def test_xmp_too_large_for_a_jpeg_segment_is_dropped_and_the_label_still_written(scans, tmp_path):
    source = read_source_metadata((scans / "big-xmp.png").read_bytes(), upright_turned=False)
    colorization = Colorization("big-xmp.png", "0" * 64, "tiny", "test", None, 0, 1.0, "2026-01-01T00:00:00Z")
    encoded = cv2.imencode(".jpg", np.full((16, 20, 3), 128, np.uint8))[1].tobytes()
    result = write_archival_metadata(encoded, "jpg", source, colorization, srgb_profile(), (20, 16))
    assert result.kept == () and len(result.warnings) == 1
    assert result.warnings[0].startswith("xmp of the scan not written into jpg (")
    (tmp_path / "out.jpg").write_bytes(result.encoded)
    written = tags(tmp_path / "out.jpg")
    assert written["XMP-iptcExt:DigitalSourceType"] == DIGITAL_SOURCE_TYPE
    assert "XMP-dc:Description" not in written


@pytest.mark.parametrize("image_format", ["tiff", "png", "bmp"])
def test_a_16_bit_master_in_prophoto_carries_that_profile(scans, tmp_path, image_format):
    """--output_profile: the master's pixels are ProPhoto RGB and say so; a BMP cannot, and stays sRGB."""
    data = (scans / "master.tiff").read_bytes()
    scan = prepare_scan("master.tiff", "master.tiff", "out", data, "0" * 64, 16, keep_truth=False)
    prediction = np.full((16, 16, 2), (0.3, 0.2), np.float32)  # a warm brown everywhere
    colorization = Colorization(
        "master.tiff", "0" * 64, "tiny", "test", None, 0, 1.0, "2026-01-01T00:00:00Z", "prophoto"
    )
    finished = finish_scan(scan, prediction, image_format, colorization=colorization)
    written = tmp_path / f"out.{image_format}"
    written.write_bytes(finished.encoded)
    if image_format == "bmp":
        assert finished.warnings[0] == "BMP holds no ICC profile: written in sRGB, not prophoto"
        return
    read = tags(written)
    assert read["ICC_Profile:ProfileDescription"] == "ProPhoto RGB (ROMM primaries, D50, gamma 1.8)"
    assert read["XMP-xmpMM:HistoryParameters"].endswith("output profile: prophoto")
    pixels = cv2.imread(str(written), cv2.IMREAD_UNCHANGED)
    assert pixels.dtype == np.uint16
    with Image.open(written) as image:
        embedded = image.info["icc_profile"]
    assert np.abs(profile_lightness(pixels, embedded) - scan.lightness()).mean() < 0.5  # littleCMS reads L back


def test_a_format_without_metadata_is_no_warning():
    """exiv2 knows no PNM: nothing to carry, nothing to warn about (the label is still written)."""
    pgm = cv2.imencode(".pgm", gray_ramp(8, 8))[1].tobytes()
    assert read_source_metadata(pgm, upright_turned=False).warnings == ()
