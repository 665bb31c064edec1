import os
import tempfile

import pytest

# Generated modules are imported from a cache folder: keep the test run's own.
os.environ.setdefault("OCGEN_CACHE", tempfile.mkdtemp(prefix="ocgen-test-cache-"))


@pytest.fixture(scope="session")
def module_for():
    """module_for(tableau, problem, controls) -> the imported generated NumPy module."""
    from ocgen.solve import generated_module

    cache = {}

    def get(tableau, problem, controls="stage"):
        key = (str(tableau), str(problem), controls)
        if key not in cache:
            cache[key] = generated_module(tableau, problem, controls)[0]
        return cache[key]

    return get
