"""Framework integrations, imported only when used (each needs its framework):

- ``wattmeter.integrations.hf.WattmeterCallback``: Hugging Face ``transformers.Trainer``.
- ``wattmeter.integrations.lightning.WattmeterCallback``: PyTorch Lightning ``Trainer``.
- ``wattmeter.integrations.openai.instrument(client)``: energy per request of an ``openai`` client.
- ``wattmeter.integrations.ollama.instrument(client)``: energy per request of an ``ollama`` client.
"""
