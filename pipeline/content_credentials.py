"""Content Credentials: a C2PA manifest in each output, signed with the institution's certificate (c2pa-python).

Only with --c2pa_cert CERT --c2pa_key KEY: the PEM certificate chain (the signing certificate first,
then its issuers) and the PEM private key of the signing certificate. The manifest has the scan as
its parent ingredient (`c2pa.opened`) and a `c2pa.color_adjustments` action whose digital source
type is trainedAlgorithmicMedia, with RevivaColor as software agent and the model and options as
parameters. Signing is the last step, after every other metadata block is written: the manifest
hashes the file as it is. docs/archival.md says how an institution gets a signing certificate.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

import c2pa
from apache_beam.io.filesystems import FileSystems
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from PIL import Image

from pipeline.archival import Colorization, software_version

SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
MIME_TYPES = {"jpg": "image/jpeg", "png": "image/png", "tiff": "image/tiff", "webp": "image/webp"}  # outputs signed
_CURVE_ALGORITHMS = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}


@dataclass(frozen=True)
class SigningCredentials:
    """A certificate chain and its key, as PEM, and the C2PA signing algorithm the key calls for."""

    certificate_chain: bytes
    private_key: bytes
    algorithm: str

    @property
    def fingerprint(self) -> str:
        """sha256 of the chain: a receipt made with another certificate does not make a file done."""
        return hashlib.sha256(self.certificate_chain).hexdigest()


def _read(location: str, what: str) -> bytes:
    try:
        with FileSystems.open(location) as handle:
            return handle.read()
    except Exception as error:  # noqa: BLE001 - whatever the storage says, the option is unusable
        raise ValueError(f"{what} {location} cannot be read: {error}") from error


def load_credentials(certificate: str, key: str) -> SigningCredentials:
    """Read and check --c2pa_cert and --c2pa_key (local or gs://); ValueError saying what is wrong."""
    chain, key_data = _read(certificate, "--c2pa_cert"), _read(key, "--c2pa_key")
    try:
        certificates = x509.load_pem_x509_certificates(chain)
    except ValueError as error:
        raise ValueError(f"--c2pa_cert {certificate} is not a PEM certificate chain: {error}") from error
    try:
        private_key = serialization.load_pem_private_key(key_data, password=None)
    except (ValueError, TypeError) as error:
        raise ValueError(f"--c2pa_key {key} is not an unencrypted PEM private key: {error}") from error
    public = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    if private_key.public_key().public_bytes(*public) != certificates[0].public_key().public_bytes(*public):
        raise ValueError(f"--c2pa_key {key} is not the key of the first certificate in --c2pa_cert {certificate}")
    return SigningCredentials(chain, key_data, _algorithm(private_key))


def _algorithm(private_key) -> str:
    if isinstance(private_key, ec.EllipticCurvePrivateKey) and private_key.curve.name in _CURVE_ALGORITHMS:
        return _CURVE_ALGORITHMS[private_key.curve.name]
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(private_key, rsa.RSAPrivateKey):
        return "ps256"
    raise ValueError(
        f"--c2pa_key: C2PA cannot sign with a {type(private_key).__name__} key (EC P-256/384/521, Ed25519, RSA)"
    )


def manifest_definition(colorization: Colorization, title: str, image_format: str) -> dict:
    """The manifest: the scan opened as parent, its colors adjusted by a trained model."""
    agent = {"name": "RevivaColor", "version": software_version()}
    return {
        "claim_generator_info": [agent],
        "title": title,
        "format": MIME_TYPES[image_format],
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {"action": "c2pa.opened", "parameters": {"ingredientIds": ["scan"]}},
                        {
                            "action": "c2pa.color_adjustments",
                            "digitalSourceType": SOURCE_TYPE,
                            "softwareAgent": agent,
                            "parameters": {"description": colorization.parameters()},
                        },
                    ]
                },
            }
        ],
    }


def sign(
    encoded: bytes,
    image_format: str,
    source: bytes,
    colorization: Colorization,
    credentials: SigningCredentials,
) -> tuple[bytes, str]:
    """`encoded` with a signed C2PA manifest; and the manifest's label. ValueError where it cannot be done."""
    if image_format not in MIME_TYPES:
        raise ValueError(f"C2PA: not signed, a {image_format.upper()} file cannot hold a manifest")
    source_format = _ingredient_format(source)
    if source_format is None:
        raise ValueError("C2PA: not signed, the scan's format cannot be a C2PA ingredient")
    title = colorization.source_name.rpartition("/")[2]
    try:
        builder = c2pa.Builder(json.dumps(manifest_definition(colorization, title, image_format)))
        ingredient = {"title": title, "format": source_format, "relationship": "parentOf", "label": "scan"}
        builder.add_ingredient(ingredient, source_format, io.BytesIO(source))
        signer = c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(credentials.algorithm, credentials.certificate_chain, credentials.private_key, None)
        )
        signed = io.BytesIO()
        builder.sign(signer, MIME_TYPES[image_format], io.BytesIO(encoded), signed)
        data = signed.getvalue()
        label = c2pa.Reader(MIME_TYPES[image_format], io.BytesIO(data)).get_active_manifest()["label"]
    except c2pa.C2paError as error:
        raise ValueError(f"C2PA: not signed: {error}") from error
    return data, label


def _ingredient_format(data: bytes) -> str | None:
    """The scan's MIME type (Pillow reads it from the header) if C2PA can take it as an ingredient, else None."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            mime = image.get_format_mimetype()
    except Exception:  # noqa: BLE001 - a scan Pillow cannot identify: no ingredient
        return None
    return mime if mime in c2pa.Builder.get_supported_mime_types() else None
