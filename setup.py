"""Build the Cython extension ``kws._core`` over the portable C core in kws_core/.

The same C sources compile into the Cortex-M firmware; this file only adds the Python
binding around them.
"""
from Cython.Build import cythonize
from setuptools import Extension, setup

CORE_SOURCES = [
    "kws_core/src/kws_model.c",
    "kws_core/src/kws_decoder.c",
    "kws_core/src/kws_frontend.c",
    "kws_core/src/kws_net.c",
]

ext = Extension(
    "kws._core",
    sources=["kws_core/python/_core.pyx", *CORE_SOURCES],
    include_dirs=["kws_core/include"],
    extra_compile_args=["-O3"],
    libraries=["m"],
)

setup(ext_modules=cythonize([ext], language_level=3))
