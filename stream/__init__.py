"""claims-stage: a real-time claims-editing stage for metastatic cancer coding."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("claims-stage")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
