"""What a Dataflow launch would submit, built offline from a dry run.

Beam's Dataflow `--dry_run=True` returns as soon as the job is built (`result.job`, an
`apiclient.Job` holding the Beam pipeline proto and the options), before
`create_job_description()` stages files to Cloud Storage and only then fills in the job's
environment: worker pools, machine type, worker container, experiments and service
options. `dataflow_job_description` builds that same environment without staging
anything, so a GPU launch can be checked without a Google Cloud project.
"""

from __future__ import annotations

from typing import Any


def dataflow_job_description(job: Any) -> dict[str, Any]:
    """The Dataflow job request for a dry run's `result.job`, as JSON-like dicts, plus its step names.

    Keys: the Dataflow Job fields (`name`, `type`, ...), `environment` (as Dataflow would receive
    it, with nothing staged) and `steps`: the unique names of every transform in the Beam pipeline.
    """
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.runners.dataflow.internal import apiclient
    from apache_beam.runners.internal import names
    from google.protobuf import json_format

    environment = apiclient.Environment(
        packages=[],
        options=job.options,
        environment_version=apiclient._FNAPI_ENVIRONMENT_MAJOR_VERSION,
        proto_pipeline_staged_url=FileSystems.join(
            job.google_cloud_options.staging_location, names.STAGED_PIPELINE_FILENAME
        ),
        proto_pipeline=job.proto_pipeline,
    )
    description = json_format.MessageToDict(job.proto._pb)
    description["environment"] = json_format.MessageToDict(environment.proto._pb)
    description["steps"] = sorted(t.unique_name for t in job.proto_pipeline.components.transforms.values())
    return description
