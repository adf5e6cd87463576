"""pytest set-up for the binding's tests: the package from this checkout,
and a store of the tests' own (ICE_HOME) so that nothing writes to the
user's default store.

    make test-python        # or, from the checkout, after `make build`:
    PYTHONPATH=python /usr/bin/python3 -m pytest -q python/tests
"""

import os
import sys
import tempfile

PYDIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if PYDIR not in sys.path:
    sys.path.insert(0, PYDIR)

os.environ["ICE_HOME"] = tempfile.mkdtemp(prefix="ice-pytest-home-")
