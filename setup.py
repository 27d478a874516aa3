"""Builds ternlm._ternlm with the project's CMake, for `pip install .`.

The metadata is in pyproject.toml; this file only teaches setuptools to run
CMake (configure with the Python module on, build that one target, copy it
into the wheel). Set CMAKE_BUILD_PARALLEL_LEVEL to bound the build's jobs.
"""

import os
import pathlib
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = pathlib.Path(__file__).resolve().parent


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        target = pathlib.Path(self.get_ext_fullpath(ext.name)).resolve()
        build_dir = pathlib.Path(self.build_temp).resolve() / "cmake"
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        subprocess.run(
            ["cmake", "-S", str(ROOT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
             "-DTERNLM_PYTHON=ON", "-DTERNLM_TESTS=OFF", "-DTERNLM_EXAMPLES=OFF", "-DTERNLM_STATIC=OFF",
             f"-DPython_EXECUTABLE={sys.executable}"],
            check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "_ternlm", "-j", jobs], check=True)
        built = next((build_dir / "python" / "ternlm").glob("_ternlm*.so"))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, target)


setup(ext_modules=[Extension("ternlm._ternlm", sources=[])], cmdclass={"build_ext": CMakeBuild})
