"""Framework integrations, imported only when used (each needs its framework):

- ``wattmeter.integrations.hf.WattmeterCallback``: Hugging Face ``transformers.Trainer``.
- ``wattmeter.integrations.lightning.WattmeterCallback``: PyTorch Lightning ``Trainer``.
"""
