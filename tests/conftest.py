import functools
import os
import sys
import tempfile

import pytest

# Generated modules are imported from a cache folder: keep the test run's own.
os.environ.setdefault("OCGEN_CACHE", tempfile.mkdtemp(prefix="ocgen-test-cache-"))


_caches_emptied_for = None


@pytest.fixture(autouse=True)
def fresh_caches_for_each_mutant():
    """Mutation testing (README): mutmut runs each mutant's tests in a process forked from one
    that has already run them, and records which tests reach which function. Every functools
    cache of ocgen (trees, derivations, loaded tableaux, imported modules) would answer with
    the unmutated code's results, and hide which tests reach the cached code. So the caches
    are emptied before every test while mutmut records ("stats"), and once when a process
    starts on a mutant: its later tests may share what the mutated code computed."""
    global _caches_emptied_for
    mutant = os.environ.get("MUTANT_UNDER_TEST")
    if mutant and (mutant == "stats" or mutant != _caches_emptied_for):
        for name, module in list(sys.modules.items()):
            if name == "ocgen" or name.startswith("ocgen."):
                for value in list(vars(module).values()):
                    if isinstance(value, functools._lru_cache_wrapper):
                        value.cache_clear()
        if "ocgen.cache" in sys.modules:
            sys.modules["ocgen.cache"]._MODULES.clear()
        _caches_emptied_for = mutant
    yield


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
