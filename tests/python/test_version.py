"""One version number: VERSION (read by meson) is what the header, the
command, the Python package and the installed distribution all say."""
import importlib.metadata
import pathlib
import subprocess

import wattmeter

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_command_the_module_and_the_distribution_share_the_version_file():
    version = (ROOT / "VERSION").read_text().strip()
    out = subprocess.run(["wattmeter", "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"wattmeter {version}"
    assert wattmeter.__version__ == version
    assert importlib.metadata.version("wattmeter") == version
