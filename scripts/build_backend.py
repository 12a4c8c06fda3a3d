"""setuptools' build backend, with its notice on editable installs left out.

buckle maps its top-level folders into one namespace (buckle.<folder>, package-dir in
pyproject.toml), so setuptools installs it in editable mode through a meta path finder and
says so on every `pip install -e .` ("Editable installation ... folders with the same name as
your package"). That notice is information about a layout chosen on purpose, not a fault of
the user's install; every other warning still shows.
"""
import warnings

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403 (the backend's whole interface)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Editable installation", category=UserWarning)
        return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
