"""One device setting for a run: ``auto``, ``cpu`` or ``cuda:N``.

The simulator (habitat-sim's ``gpu_device_id``), the memory (open3d's device) and the
answering head (torch's device) each take their own spelling of the same choice; a run names
it once, as ``device=...``, and :func:`device_settings` spells it for each. ``auto`` takes the
first CUDA GPU where torch sees one, else the CPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aeqa.envs.errors import AeqaError

_CUDA_RE = re.compile(r"^cuda(?::(\d+))?$")


@dataclass(frozen=True)
class DeviceSettings:
    """The one device in each component's spelling.

    Attributes:
        device: ``cpu`` or ``cuda:N`` (``auto`` resolved).
        gpu_device_id: habitat-sim's rendering GPU, -1 for the CPU (Mesa llvmpipe).
        memory_device: open3d's device, ``CPU:0`` or ``CUDA:N``.
        answerer_device: torch's device, ``cpu`` or ``cuda:N``.
    """

    device: str
    gpu_device_id: int
    memory_device: str
    answerer_device: str


def _cuda_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def device_settings(device: str, cuda_count: int | None = None) -> DeviceSettings:
    """Spell ``device`` for each component.

    Args:
        device: ``auto``, ``cpu``, ``cuda`` (``cuda:0``) or ``cuda:N``.
        cuda_count: CUDA GPUs torch sees (asked of torch where None).

    Raises:
        AeqaError: an unknown device, or a CUDA device this machine does not have.
    """
    name = device.strip().lower()
    match = _CUDA_RE.match(name)
    if name not in ("auto", "cpu") and match is None:
        raise AeqaError(f"device={device!r} is unknown; use auto, cpu or cuda:N (e.g. cuda:0)")
    count = _cuda_count() if cuda_count is None else cuda_count
    if name == "auto":
        name = "cuda:0" if count else "cpu"
        match = _CUDA_RE.match(name)
    if name == "cpu" or match is None:
        return DeviceSettings("cpu", -1, "CPU:0", "cpu")
    index = int(match.group(1) or 0)
    if index >= count:
        seen = f"only cuda:0 to cuda:{count - 1}" if count else "no GPU"
        raise AeqaError(
            f"device={device!r}: torch sees {seen} here; use device=cpu (or auto), another "
            "cuda:N, or a CUDA build of torch"
        )
    return DeviceSettings(f"cuda:{index}", index, f"CUDA:{index}", f"cuda:{index}")
