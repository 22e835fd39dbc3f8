"""PrometheusClient: AIPowerMeter's Prometheus driver, for
``Experiment(PrometheusClient()).monitor_machine(period=...)``.

AIPowerMeter served five gauges with Flask on port 5001. Here the serving is
done by wattmeter's own exporter (``wattmeter.serve``, C, bound to 127.0.0.1
by default); creating the client starts nothing, and neither Flask nor the
prometheus_client package is needed (see PrometheusClient).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, List, Optional

# AIPowerMeter's gauges and their meaning (served by wattmeter.serve's
# AIPowerMeter compatibility names).
metric_metadata: Dict[str, str] = {
    "power_draw_cpu": "cpu consumption for the specified process",
    "intel_power": "total rapl power",
    "mem_used_cpu": "total cpu memory used (uss)",
    "mem_used_gpu": "average memory used by the gpu",
    "power_draw_gpu": "Power consumed by gpu as given by nvidia-smi",
}


class _Value:
    def __init__(self) -> None:
        self._v = 0.0
        self._lock = threading.Lock()

    def set(self, v: float) -> None:
        with self._lock:
            self._v = float(v)

    def inc(self, by: float) -> None:
        with self._lock:
            self._v += float(by)

    def get(self) -> float:
        with self._lock:
            return self._v


class Gauge:
    """A Prometheus gauge (the prometheus_client package's Gauge methods that
    AIPowerMeter uses: set, inc, dec, and _value.get())."""

    def __init__(self, name: str, documentation: str) -> None:
        self.name = name
        self.documentation = documentation
        self._value = _Value()

    def set(self, value: float) -> None:
        self._value.set(value)

    def inc(self, amount: float = 1) -> None:
        self._value.inc(amount)

    def dec(self, amount: float = 1) -> None:
        self._value.inc(-amount)

    def get(self) -> float:
        return self._value.get()

    def expose(self) -> str:
        doc = self.documentation.replace("\\", "\\\\").replace("\n", "\\n")
        return f"# HELP {self.name} {doc}\n# TYPE {self.name} gauge\n{self.name} {self._value.get()!r}\n"


class PrometheusClient:
    """The driver of ``Experiment(...).monitor_machine()``, as AIPowerMeter's.

    ``port`` (5001 by default, as AIPowerMeter) and ``host`` (127.0.0.1;
    AIPowerMeter's Flask app bound localhost too). ``gauges`` holds AIPowerMeter's
    five Gauge objects; ``save_power_metrics(metrics)`` sets them from a
    power_metrics.json sample; ``app`` is a WSGI application serving them in
    Prometheus's text format at ``/metrics``; ``run()`` serves ``app`` on
    host:port until interrupted (AIPowerMeter's ``run``, with the standard
    library's wsgiref instead of Flask).

    Unlike AIPowerMeter's, creating the client starts no server thread:
    ``monitor_machine()`` serves the machine's figures with wattmeter's own
    exporter on this port (the same gauge names), and two servers cannot
    share a port. Call ``run()`` (in a thread if need be) to serve the gauges
    you set yourself."""

    def __init__(self, port: Optional[int] = None, host: str = "127.0.0.1") -> None:
        self.port = 5001 if port is None else int(port)
        self.host = host
        self.folder: Optional[str] = None
        self.wattemeter_exec: Optional[str] = None
        self.gauges: Dict[str, Gauge] = {m: Gauge(m, d) for m, d in metric_metadata.items()}
        self._server: Any = None

    def generate_latest(self) -> bytes:
        """The gauges in Prometheus's text exposition format."""
        return "".join(g.expose() for g in self.gauges.values()).encode("utf-8")

    def app(self, environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        """WSGI application: GET /metrics gives the gauges; other paths 404."""
        if environ.get("PATH_INFO", "/") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"not found: the gauges are at /metrics\n"]
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Content-Type", "text/plain; charset=utf-8"),
                                                     ("Allow", "GET, HEAD")])
            return [b"only GET and HEAD\n"]
        body = self.generate_latest()
        start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
                                  ("Content-Length", str(len(body)))])
        return [body] if environ.get("REQUEST_METHOD", "GET") == "GET" else []

    def run(self) -> None:
        """Serves ``app`` on host:port until interrupted (or shutdown())."""
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        class _Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                logging.debug("prometheus_client: " + format, *args)

        try:
            self._server = make_server(self.host, self.port, self.app, handler_class=_Quiet)
        except OSError as e:
            raise OSError(e.errno, f"cannot serve the gauges on {self.host}:{self.port}: {e.strerror}; "
                          "pass another port: PrometheusClient(port=...)") from None
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.server_close()

    def shutdown(self) -> None:
        """Stops run() (from another thread)."""
        if self._server is not None:
            self._server.shutdown()

    def erase(self) -> None:
        """Nothing to erase: Prometheus keeps the history."""

    def save_power_metrics(self, metrics: Dict[str, Any]) -> None:
        """Sets the gauges from one power_metrics.json sample ({"cpu": {...},
        "gpu": {...}}), as AIPowerMeter: power_draw_cpu = total_cpu_power,
        intel_power, mem_used_cpu = Σ per_process_mem_use_abs, mem_used_gpu =
        Σ per_gpu_attributable_mem_use, power_draw_gpu = nvidia_draw_absolute
        (or NVML's nvidia_power). Missing figures leave their gauge as is."""
        def num(v: Any) -> Optional[float]:
            if isinstance(v, dict):
                vals = [num(x) for x in v.values()]
                return sum(x for x in vals if x is not None)
            if isinstance(v, (list, tuple)) and v:
                return num(v[0])
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

        cpu = metrics.get("cpu") or {}
        gpu = metrics.get("gpu") or {}
        for gauge, src, key in (("power_draw_cpu", cpu, "total_cpu_power"), ("intel_power", cpu, "intel_power"),
                                ("mem_used_cpu", cpu, "per_process_mem_use_abs"),
                                ("mem_used_gpu", gpu, "per_gpu_attributable_mem_use"),
                                ("power_draw_gpu", gpu, "nvidia_draw_absolute" if "nvidia_draw_absolute" in gpu
                                 else "nvidia_power")):
            v = num(src.get(key))
            if v is not None:
                self.gauges[gauge].set(v)

    def close_driver(self) -> None:
        """Kept for compatibility."""

    def save_wattmeter_metrics(self) -> None:
        logging.warning("You are trying to log wattmeter metric to prometheus, but this has not been "
                        "implemented. Skipping.")
