import os
from typing import Any, Dict, Optional

from .meter import Meter as Meter, Request as Request, Window as Window
from .results import Results as Results, load as load
from .results import Comparison as Comparison, compare as compare

__version__: str
__all__ = ["Meter", "Results", "load", "sensors", "__version__", "compare", "Comparison", "Server", "serve", "Window", "Request",
           "load_job"]


def load_job(*dirs: str | os.PathLike[str]) -> Dict[str, Any]: ...

def sensors(
    sysfs_root: str = ..., procfs_root: str = ..., nvml_lib: Optional[str] = ..., no_gpu: bool = ...
) -> Dict[str, Any]: ...

class Server:
    url: str
    port: int
    def __init__(self, handle: object) -> None: ...
    def stop(self) -> None: ...
    def __enter__(self) -> Server: ...
    def __exit__(self, *exc: object) -> None: ...

def serve(
    listen: str = ...,
    *,
    period_s: float = ...,
    sysfs_root: str | None = ...,
    procfs_root: str | None = ...,
    nvml_lib: str | None = ...,
    no_gpu: bool = ...,
    per_process: bool = ...,
    per_cgroup: bool = ...,
    max_series: int = ...,
    web_config_file: str | None = ...,
    record_dir: str | None = ...,
    reprobe_s: float = ...,
) -> Server: ...
