"""Cloud Storage through Beam's FileSystems, including a GCS emulator (the tests use one).

When STORAGE_EMULATOR_HOST is set, google-cloud-storage sends every request to that
emulator and uses anonymous credentials. Beam 2.77 (`gcsio.create_storage_client`)
first looks for Google credentials anyway (`apache_beam.internal.gcp.auth`); with none
to find, it retries (with back-off, in every process) before it connects anonymously.
"""

from __future__ import annotations

import os

from apache_beam.io.gcp import gcsio

EMULATOR_HOST_VARIABLE = "STORAGE_EMULATOR_HOST"
_beam_storage_client = gcsio.create_storage_client


def _storage_client(pipeline_options, use_credentials: bool = True):
    """Beam's own client, anonymous at once when an emulator is set: it could only end up anonymous."""
    emulated = bool(os.environ.get(EMULATOR_HOST_VARIABLE))
    return _beam_storage_client(pipeline_options, use_credentials=use_credentials and not emulated)


def skip_credentials_for_emulator() -> None:
    """Make Beam's GCS client in this process skip the credential lookup when an emulator is set.

    Called by the pipeline at startup and by its DoFns' setup(), since workers may be new processes.
    """
    gcsio.create_storage_client = _storage_client
