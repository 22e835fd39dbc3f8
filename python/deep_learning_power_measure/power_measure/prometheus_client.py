"""PrometheusClient: AIPowerMeter's Prometheus driver, for
``Experiment(PrometheusClient()).monitor_machine(period=...)``.

AIPowerMeter served five gauges with Flask on port 5001. Here the serving is
done by wattmeter's own exporter (``wattmeter.serve``, C, bound to 127.0.0.1
by default); this class only carries the settings, so creating it starts
nothing and needs neither Flask nor the prometheus_client package.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional

# AIPowerMeter's gauges and their meaning (served by wattmeter.serve's
# AIPowerMeter compatibility names).
metric_metadata: Dict[str, str] = {
    "power_draw_cpu": "cpu consumption for the specified process",
    "intel_power": "total rapl power",
    "mem_used_cpu": "total cpu memory used (uss)",
    "mem_used_gpu": "average memory used by the gpu",
    "power_draw_gpu": "Power consumed by gpu as given by nvidia-smi",
}


class PrometheusClient:
    """Settings for monitor_machine(): the port (5001 by default, as
    AIPowerMeter) and the address (127.0.0.1; AIPowerMeter's Flask app bound
    localhost too)."""

    def __init__(self, port: Optional[int] = None, host: str = "127.0.0.1") -> None:
        self.port = 5001 if port is None else int(port)
        self.host = host
        self.folder: Optional[str] = None
        self.wattemeter_exec: Optional[str] = None
        self.gauges: Dict[str, Any] = dict(metric_metadata)

    def erase(self) -> None:
        """Nothing to erase: Prometheus keeps the history."""

    def save_power_metrics(self, metrics: Dict[str, Any]) -> None:
        """Kept for compatibility: wattmeter's exporter reads the meter itself."""

    def close_driver(self) -> None:
        """Kept for compatibility."""

    def save_wattmeter_metrics(self) -> None:
        logging.warning("You are trying to log wattmeter metric to prometheus, but this has not been "
                        "implemented. Skipping.")
