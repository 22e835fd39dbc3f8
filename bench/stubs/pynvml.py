"""Stand-in for NVIDIA's `pynvml` on a machine without an NVIDIA driver.

AIPowerMeter imports `pynvml` at module level (gpu_power.py) even when it
will not use a GPU. This stand-in behaves as the real binding does where no
driver is installed: importing works, nvmlInit() raises NVMLError. It is put
on sys.path for the AIPowerMeter runs of bench/peer_driver.py only, so the
run does not depend on which pynvml (if any) other peers pulled in.
"""


class NVMLError(Exception):
    pass


class NVMLError_LibraryNotFound(NVMLError):
    pass


def nvmlInit(*_a, **_k):
    raise NVMLError_LibraryNotFound("bench stand-in: no NVIDIA driver on this machine")


def nvmlShutdown(*_a, **_k):
    pass


def nvmlDeviceGetCount(*_a, **_k):
    return 0
