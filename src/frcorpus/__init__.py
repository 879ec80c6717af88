"""frcorpus: build high-quality, versioned French instruction (SFT) corpora."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("frcorpus")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
