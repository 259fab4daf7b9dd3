"""The Dataflow GPU launch, checked offline with Beam's Dataflow dry run (nothing is submitted)."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import pytest
from apache_beam.portability.api import beam_runner_api_pb2

import pipeline
from pipeline.colorize import main
from pipeline.dataflow import dataflow_job_description

SETUP_FILE = Path(__file__).resolve().parent.parent / "setup.py"
IMAGE = "example.com/revivacolor:test"
ACCELERATOR = "worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver"
GPU_LAUNCH = [
    "--input=gs://test-bucket/scans/",
    "--output=gs://test-bucket/colorized",
    "--runner=DataflowRunner",
    "--dry_run=True",
    "--project=test-project",
    "--region=us-central1",
    "--temp_location=gs://test-bucket/tmp",
    f"--sdk_container_image={IMAGE}",
    "--experiments=use_runner_v2",
    f"--dataflow_service_options={ACCELERATOR}",
    "--machine_type=g2-standard-4",
    "--number_of_worker_harness_threads=2",
    "--model_copies=1",
    f"--setup_file={SETUP_FILE}",
]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Fail at once on any network access (Beam would retry for minutes where there is no network).

    Beam's stager builds the setup.py sdist (24 MB) in a new temporary folder: keep it under tmp_path.
    """

    def refuse(*args, **kwargs):
        raise AssertionError(f"a Dataflow dry run must not use the network: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def test_gpu_launch_builds_a_job_with_the_accelerator_the_container_and_run_inference():
    result = pipeline.run(GPU_LAUNCH)
    assert result.state == "DONE"  # Beam's dry-run result: built, not submitted

    description = dataflow_job_description(result.job)
    environment = description["environment"]
    assert environment["serviceOptions"] == [ACCELERATOR]
    assert "use_runner_v2" in environment["experiments"]
    assert "use_multiple_sdk_containers" in environment["experiments"]  # an SDK process per vCPU
    assert "no_use_multiple_sdk_containers" not in environment["experiments"]
    (pool,) = environment["workerPools"]
    assert pool["machineType"] == "g2-standard-4"
    assert pool["workerHarnessContainerImage"] == IMAGE
    assert [image["containerImage"] for image in pool["sdkHarnessContainerImages"]] == [IMAGE]
    assert pool["numThreadsPerWorker"] == 2  # in each of the VM's SDK processes, one per vCPU
    worker_options = environment["sdkPipelineOptions"]["options"]
    assert worker_options["input"] == "gs://test-bucket/scans/"
    assert worker_options["output"] == "gs://test-bucket/colorized"
    assert worker_options["model_copies"] == 1  # one model on each VM's GPU, shared by its processes
    assert "ColorizeScans/RunInference" in description["steps"]
    assert "ReadScans/SpreadFiles" in description["steps"]  # else one worker would get every file

    (beam_environment,) = result.job.proto_pipeline.components.environments.values()
    assert beam_runner_api_pb2.DockerPayload.FromString(beam_environment.payload).container_image == IMAGE
    staged = {
        beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(dependency.role_payload).staged_name
        for dependency in beam_environment.dependencies
    }
    assert "workflow.tar.gz" in staged  # the sdist of --setup_file, installed on every worker


def test_command_line_dry_run_prints_the_job_and_writes_nothing(capsys, tmp_path):
    output = tmp_path / "colorized"
    assert main([*GPU_LAUNCH, f"--output={output}"]) == 0  # the later --output wins
    out, err = capsys.readouterr()
    assert '"machineType": "g2-standard-4"' in out and ACCELERATOR in out
    assert "dry run: Dataflow job beamapp-" in err and "not submitted" in err
    assert not output.exists()  # no metadata cleared or written, no report
