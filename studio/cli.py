"""`revivacolor studio`: start the hint studio on an archive and print its address (it opens nothing)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import socket
import sys

from models.registry import resolve_model
from pipeline.inference import limit_cpu_threads, load_checked_model
from pipeline.options import non_negative_int, vividness_factor
from pipeline.preview import warm_up

DEFAULT_PORT = 8765


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="revivacolor studio",
        description="Review a night's results in the browser and mark known colors (hints) with clicks.",
        allow_abbrev=False,
    )
    parser.add_argument("--input", required=True, help="The folder of scans (as the pipeline's --input; local).")
    parser.add_argument("--hints", required=True, help="The folder of hints files the studio reads and writes.")
    parser.add_argument("--output", default=None, help="The pipeline's --output: its results and table are shown.")
    parser.add_argument("--model", default="default", help="The model of the previews (as the pipeline's --model).")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"Port to listen on (default {DEFAULT_PORT}).")
    parser.add_argument(
        "--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1: this machine only)."
    )
    parser.add_argument("--vividness", type=vividness_factor, default=1.0, help="As the pipeline's --vividness.")
    parser.add_argument(
        "--no_mirror_average",
        dest="mirror_average",
        action="store_false",
        help="As the pipeline's --no_mirror_average.",
    )
    parser.add_argument(
        "--inference_threads", type=non_negative_int, default=0, help="CPU threads for the model (0: every core)."
    )
    parser.add_argument(
        "--cache_dir", default=None, help="Where thumbnails are kept (default ~/.cache/revivacolor/studio)."
    )
    arguments = parser.parse_args(argv)
    for name in ("input", "hints", "output"):
        value = getattr(arguments, name)
        if value and "://" in value:
            parser.error(f"--{name} {value}: the studio works on local folders")
    if not os.path.isdir(arguments.input):
        parser.error(f"--input {arguments.input} is not a folder")
    if os.path.exists(arguments.hints) and not os.path.isdir(arguments.hints):
        parser.error(f"--hints {arguments.hints} is not a folder")
    if not 0 < arguments.port < 65536:
        parser.error(f"--port must be from 1 to 65535, not {arguments.port}")
    return arguments


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARDS = ("0.0.0.0", "::")


def served_hosts(host: str, port: int) -> list[str]:
    """The Host headers the studio answers to: the address it listens on, and this machine's names where
    that includes them (localhost's on 127.0.0.1; on every interface, 0.0.0.0, also its host names and addresses)."""
    names = {host}
    if host in LOOPBACK_NAMES or host in WILDCARDS:
        names |= set(LOOPBACK_NAMES)
    if host in WILDCARDS:
        names |= {socket.gethostname(), socket.getfqdn()}
        try:
            names |= set(socket.gethostbyname_ex(socket.gethostname())[2])
        except OSError:
            pass  # a host name that does not resolve: its name is still accepted
    names -= set(WILDCARDS)
    return sorted(f"[{name}]:{port}" if ":" in name else f"{name}:{port}" for name in names)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def main(argv: list[str] | None = None) -> int:
    """Load the model, list the archive, print the address and serve until Ctrl+C."""
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    import uvicorn

    from studio.app import create_app
    from studio.archive import Archive
    from studio.images import default_cache_folder
    from studio.session import Studio

    try:
        spec = resolve_model(arguments.model)
        if not spec.takes_hints:
            raise ValueError(
                f"the studio needs a model that takes known colors (the default does); {spec.name} does not"
            )
        limit_cpu_threads(arguments.inference_threads)
        model = load_checked_model(spec)
        warm_up(model, spec, arguments.mirror_average)
        os.makedirs(arguments.hints, exist_ok=True)
        archive = Archive(arguments.input, arguments.hints, arguments.output)
    except (ValueError, OSError) as error:
        print(f"revivacolor studio: error: {error}", file=sys.stderr)
        return 1
    studio = Studio(
        archive,
        spec,
        model,
        arguments.cache_dir or default_cache_folder(),
        vividness=arguments.vividness,
        mirror_average=arguments.mirror_average,
    )
    key = secrets.token_urlsafe(24)
    hosts = served_hosts(arguments.host, arguments.port)
    if not _is_loopback(arguments.host):
        print(
            f"revivacolor studio: warning: listening on {arguments.host}, not only this machine: anyone who can "
            "reach it and has the address below (with its key) can read the scans and write hints",
            file=sys.stderr,
        )
    shown = {**dict.fromkeys(LOOPBACK_NAMES, "127.0.0.1"), **dict.fromkeys(WILDCARDS, socket.getfqdn())}.get(
        arguments.host, arguments.host
    )
    shown = f"[{shown}]:{arguments.port}" if ":" in shown else f"{shown}:{arguments.port}"
    print(
        f"revivacolor studio: {len(archive.scans)} scans under {archive.input}, hints in {archive.hints}, "
        f"model {spec.name} v{spec.version}\nopen http://{shown}/?key={key} (Ctrl+C stops)",
        flush=True,
    )
    app = create_app(studio, key, arguments.port, hosts)
    config = uvicorn.Config(app, host=arguments.host, port=arguments.port, log_level="warning", server_header=False)
    server = uvicorn.Server(config)
    try:
        server.run()
    except KeyboardInterrupt:  # Ctrl+C: uvicorn has shut down; raised again only to end the process
        pass
    print("revivacolor studio: stopped", file=sys.stderr)
    return 0 if server.started else 1
