from typing import Optional

from .meter import Meter as Meter
from .results import Results as Results, load as load
from .results import Comparison as Comparison, compare as compare

__version__: str
__all__: list[str]

def sensors(
    sysfs_root: str = ..., procfs_root: str = ..., nvml_lib: Optional[str] = ..., no_gpu: bool = ...
) -> dict: ...

class Server:
    url: str
    port: int
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
) -> Server: ...
