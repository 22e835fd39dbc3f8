"""experiment (Experiment, ExpResults), parsers (JsonParser) and
prometheus_client (PrometheusClient), as in AIPowerMeter."""
