"""The shared test data folder (../shared beside the repository, or
$OCTET_SHARED): models, calibration data and node tests that are not part
of the repository.  A test that needs it calls need() with the paths it
reads; when one is missing (a fresh clone with nothing beside it) need()
prints `SKIP: needs ../shared/<path> (not found)` and exits with 77, which
CTest reports as skipped (SKIP_RETURN_CODE in tests/CMakeLists.txt).

CTest puts this folder on PYTHONPATH (octet_py_test); a script run by hand
needs PYTHONPATH=tests/testlib as well."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("OCTET_SHARED") or os.path.join(HERE, "..", "..", "..", "shared")
SKIP_EXIT = 77


def need(*paths):
    """Returns the shared folder if every path (relative to it) exists,
    otherwise skips the test.  No argument: the folder itself."""
    for p in paths or ("",):
        full = os.path.join(SHARED, p)
        if not os.path.exists(full):
            print(f"SKIP: needs ../shared/{p} (not found)".replace("shared/ (", "shared (")
                  + (f"; looked for {os.path.abspath(full)}" if "OCTET_SHARED" in os.environ else ""),
                  flush=True)
            sys.exit(SKIP_EXIT)
    return SHARED
