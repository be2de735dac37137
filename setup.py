"""The optional C extension (raceway_sdk/_speedups.c); everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and the recorder uses its
Python hot path (raceway_sdk._recorder.use_speedups reports which one runs).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "raceway_sdk._speedups",
            sources=["sdk/raceway_sdk/_speedups.c"],
            optional=True,
        )
    ]
)
