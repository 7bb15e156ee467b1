"""Finding the Ray cluster, and checking it can run a study, before anything is written.

``connect`` looks at the address within a bounded time (Ray alone would retry for minutes, or for
ever on a stale cluster file); ``check_fits`` finds a node with a trial's resources. Each failure
is one ``ConfigError`` naming the setting to change.
"""

from __future__ import annotations

import logging
import os
import socket
from types import ModuleType

from tunery._exceptions import ConfigError
from tunery.run._resources import Resources

__all__ = ["CONNECT_SECONDS", "RAY_EXTRA", "check_fits", "connect", "import_ray"]

RAY_EXTRA = 'pip install "tunery[ray]"'
CONNECT_SECONDS = float(os.environ.get("TUNERY_RAY_CONNECT_TIMEOUT", "10"))
"""How long a cluster address may take to answer before ``--address`` is called unreachable."""
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_HTTP2_SETTINGS = 0x04  # the frame type a gRPC server sends first
_ADDRESS_HELP = "the address of a running Ray cluster: auto, HOST:PORT or ray://HOST:PORT"


def import_ray() -> ModuleType:
    """Ray itself, or a ``ConfigError`` that names the extra to install."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "executor", "ray", f"Ray installed for executor 'ray' ({RAY_EXTRA})"
        ) from None
    return ray


def connect(address: str | None) -> ModuleType:
    """Connect this process to the cluster at ``address`` (once; later calls reuse it).

    ``None`` starts a one-machine Ray for this process, whatever cluster file an earlier
    ``ray start`` left behind. An address nothing answers at (within ``CONNECT_SECONDS``) is a
    ``ConfigError`` naming ``--address``, raised before anything is written.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    target = "local" if address is None else _bootstrap(ray, address)
    if target not in ("local", "auto"):
        _check_reachable(address or target, target)
    try:
        ray.init(
            address=target,
            include_dashboard=False,
            logging_level=logging.WARNING,
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        text = str(exc).strip()
        first = text.splitlines()[0].partition(". ")[0] if text else type(exc).__name__
        raise ConfigError("--address", address, f"{_ADDRESS_HELP} ({first})") from None
    return ray


def _bootstrap(ray: ModuleType, address: str) -> str:
    """The ``HOST:PORT`` (or ``ray://HOST:PORT``) that ``address`` means. ``auto`` is read as Ray
    reads it, ``RAY_ADDRESS`` then the file the last ``ray start`` wrote (which outlives its
    cluster: probed, not trusted); with neither there is no cluster to join."""
    if address != "auto":
        return address
    from_environment = os.environ.get("RAY_ADDRESS", "")
    if from_environment:
        return from_environment
    try:
        recorded = ray._private.utils.read_ray_address()
    except AttributeError:  # Ray moved its helper: let ray.init look for itself
        return address
    if not recorded:
        expected = "a Ray cluster started on this machine (none found; `ray start --head`)"
        raise ConfigError("--address", address, expected)
    return str(recorded)


def _check_reachable(address: str, target: str) -> None:
    """A bounded look at the address before ``ray.init``, which would retry for a minute or more
    (or for ever, for a stale cluster file): a TCP connect, then the first bytes of HTTP/2, which
    a Ray GCS or Ray Client server (gRPC, both) answers with its SETTINGS frame."""
    host, _, port = target.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError("--address", address, _ADDRESS_HELP)
    where = f"a running Ray cluster at {target}" if target != address else "a running Ray cluster"
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS) as probe:
            if os.environ.get("RAY_USE_TLS", "0") in ("0", ""):  # TLS would need its handshake
                probe.settimeout(CONNECT_SECONDS)
                probe.sendall(_HTTP2_PREFACE)
                frame = probe.recv(9)
                if len(frame) < 4 or frame[3] != _HTTP2_SETTINGS:
                    raise ConfigError("--address", address, f"{where} (it does not speak gRPC)")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {CONNECT_SECONDS:g} s"
        raise ConfigError("--address", address, f"{where} ({reason})") from None


def check_fits(ray: ModuleType, resources: Resources) -> None:
    """``ConfigError`` unless one alive node offers all that a trial holds: Ray would otherwise
    leave the trials pending for ever, with no word to say why."""
    offers = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    cpu, gpu = resources.cpu, resources.gpu
    if any(o.get("CPU", 0.0) >= cpu and o.get("GPU", 0.0) >= gpu for o in offers):
        return
    most_cpu = max((o.get("CPU", 0.0) for o in offers), default=0.0)
    if most_cpu < cpu:
        name, value, key, most = "cpu", cpu, "CPU", most_cpu
    else:  # the GPUs fall short, on the nodes with CPUs enough
        name, value, key = "gpu", gpu, "GPU"
        most = max((o.get("GPU", 0.0) for o in offers if o.get("CPU", 0.0) >= cpu), default=0.0)
    expected = f"at most {most:g} {key}, the most one node offers ({_describe(offers)})"
    raise ConfigError(f"run.resources.{name}", value, expected)


def _describe(offers: list[dict[str, float]]) -> str:
    nodes = [f"{o.get('CPU', 0.0):g} CPU, {o.get('GPU', 0.0):g} GPU" for o in offers]
    return f"{len(offers)} node(s): " + "; ".join(nodes) if nodes else "no node alive"
