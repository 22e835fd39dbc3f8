from typing import Any, Dict, Optional, Sequence

version: str
DEFAULT_PERIOD_S: float
DEFAULT_REPROBE_S: float
DEFAULT_PROC_PERIOD_S: float
DEFAULT_MEM_PERIOD_S: float

def meter_start(
    output_dir: Optional[str],
    period_s: float = ...,
    proc_period_s: float = ...,
    mem_period_s: float = ...,
    pids: Optional[Sequence[int]] = ...,
    measure_self: bool = ...,
    sysfs_root: Optional[str] = ...,
    procfs_root: Optional[str] = ...,
    model_min_w: float = ...,
    model_max_w: float = ...,
    force_model: bool = ...,
    command: Optional[Sequence[str]] = ...,
    nvml_lib: Optional[str] = ...,
    no_gpu: bool = ...,
    gpu_exclusive: bool = ...,
    include_pids: Optional[Sequence[int]] = ...,
    include_name: Optional[str] = ...,
    include_cgroup: Optional[str] = ...,
    include_unit: Optional[str] = ...,
) -> Any: ...
def meter_stop(handle: Any, exit_status: int = ...) -> None: ...
def meter_snapshot(handle: Any) -> Dict[str, Any]: ...
def report_json(dir: str, top_n: int = ...) -> str: ...
def report_text(dir: str, top_n: int = ...) -> str: ...
def report_columns_json(dir: str, top_n: int = ...) -> str: ...
def sensors(
    sysfs_root: str = ...,
    procfs_root: str = ...,
    as_json: bool = ...,
    nvml_lib: Optional[str] = ...,
    no_gpu: bool = ...,
) -> str: ...
def report_detail_json(dir: str, top_n: int = ...) -> str: ...
def report_job_json(dirs: Sequence[str]) -> str: ...
def report_window_json(dir: str, start_s: Optional[float] = ..., end_s: Optional[float] = ...) -> str: ...
def exporter_start(
    listen: Optional[str] = ...,
    period_s: float = ...,
    sysfs_root: Optional[str] = ...,
    procfs_root: Optional[str] = ...,
    nvml_lib: Optional[str] = ...,
    no_gpu: bool = ...,
    per_process: bool = ...,
    per_cgroup: bool = ...,
    max_series: int = ...,
    web_config_file: Optional[str] = ...,
    record_dir: Optional[str] = ...,
    reprobe_s: float = ...,
) -> Any: ...
def exporter_info(handle: Any) -> tuple[str, int]: ...
def exporter_stop(handle: Any) -> None: ...
