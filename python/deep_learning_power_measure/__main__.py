"""``python -m deep_learning_power_measure --cmd "python train.py" --output_folder DIR``:
records a command as AIPowerMeter's module entry point does (see
deep_learning_power_measure.main)."""

import sys

from deep_learning_power_measure import main

if __name__ == "__main__":
    sys.exit(main())
