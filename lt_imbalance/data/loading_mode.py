"""How a data module serves its images: the one place where the loading mode is decided and checked.

Four modes:

- ``memory``: decoded uint8 tensors held in host memory (arrays such as CIFAR's always are);
- ``stream``: image files decoded per access in the loader's workers (memory does not grow with the data);
- ``device``: the training images resident on the training device as uint8, each batch augmented there
  (``device_data: true``; needs the images in memory first);
- ``gpu_decode``: the loader reads JPEG bytes, each batch is decoded on the device (``gpu_decode: true``).

The rule for image files when ``in_memory`` is not given: the selected images (training, validation
and test) are held in memory when their decoded size, ``images x channels x size x size`` bytes, is
at most ``memory_limit_mib`` (default :data:`MEMORY_LIMIT_MIB`), and streamed otherwise.
``random_resized_crop`` crops full-resolution training images, so its data streams. Combinations that
cannot work are refused here, with the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from lt_imbalance.errors import UnsupportedCombination

#: decoded images up to this size (MiB) are held in memory when ``in_memory`` is not given
MEMORY_LIMIT_MIB = 2048


@dataclass(frozen=True)
class LoadingMode:
    """The decision and why (saved in the run metadata)."""

    name: str
    reason: str

    @property
    def in_memory(self) -> bool:
        return self.name in ("memory", "device")


def choose_loading(
    *,
    files: bool,
    in_memory: bool | None,
    device_data: bool,
    gpu_decode: bool,
    augmentation: str,
    decoded_mib: float | None = None,
    memory_limit_mib: float = MEMORY_LIMIT_MIB,
) -> LoadingMode:
    """The loading mode of a data module (module docstring).

    Args:
        files: the samples are image files (else arrays already in memory).
        in_memory: the user's choice for files; ``None`` decides by ``decoded_mib``.
        device_data: hold the training images on the device and augment there.
        gpu_decode: decode JPEG batches on the device.
        augmentation: the training policy (``random_resized_crop`` needs full-resolution images).
        decoded_mib: decoded size of the selected images; ``None`` before it is known (then only the
            combinations that are wrong whatever the size are checked, and the mode is provisional).
        memory_limit_mib: the in-memory limit of the rule.
    """
    full_resolution = augmentation == "random_resized_crop"
    if device_data and full_resolution:
        raise UnsupportedCombination("random_resized_crop crops full-resolution images per sample; set device_data: false for it")
    if gpu_decode and (not files or in_memory or device_data):
        raise UnsupportedCombination(
            "gpu_decode decodes each batch's image files on the device; it excludes in_memory and device_data (and needs image files)"
        )
    if not files:
        return LoadingMode("device" if device_data else "memory", "array data")
    if in_memory and full_resolution:
        raise UnsupportedCombination(
            "random_resized_crop crops each training image at full resolution, which in_memory does not keep; set in_memory: false"
        )
    if in_memory is False and device_data:
        raise UnsupportedCombination("device_data needs the training images in memory; drop in_memory: false (or set device_data: false)")
    if gpu_decode:
        return LoadingMode("gpu_decode", "gpu_decode: true")
    if in_memory is not None:
        chosen = "device" if device_data else ("memory" if in_memory else "stream")
        return LoadingMode(chosen, f"in_memory: {str(in_memory).lower()}")
    if full_resolution:
        return LoadingMode("stream", "random_resized_crop needs full-resolution images")
    if decoded_mib is None:
        return LoadingMode("device" if device_data else "memory", "provisional: size not known yet")
    if decoded_mib > memory_limit_mib:
        if device_data:
            raise UnsupportedCombination(
                f"device_data needs the training images in memory, but the selected images take {decoded_mib:,.0f} MiB decoded, more "
                f"than memory_limit_mib ({memory_limit_mib:,.0f}); raise data.init_args.memory_limit_mib if the host and device "
                "have room, or set device_data: false (the images then stream from the files)"
            )
        return LoadingMode("stream", f"{decoded_mib:,.0f} MiB decoded > memory_limit_mib {memory_limit_mib:,.0f}")
    reason = f"{decoded_mib:,.1f} MiB decoded <= memory_limit_mib {memory_limit_mib:,.0f}"
    return LoadingMode("device" if device_data else "memory", reason)
