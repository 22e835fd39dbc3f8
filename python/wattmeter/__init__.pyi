from typing import Any, Dict, Optional

from .meter import Meter as Meter
from .results import Results as Results, load as load
from .results import Comparison as Comparison, compare as compare

__version__: str
__all__ = ["Meter", "Results", "load", "sensors", "__version__", "compare", "Comparison"]

def sensors(
    sysfs_root: str = ..., procfs_root: str = ..., nvml_lib: Optional[str] = ..., no_gpu: bool = ...
) -> Dict[str, Any]: ...
