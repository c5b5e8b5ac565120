"""Shared helpers of the picture tests (tests/pictures): running octet, a
small parser for the node statements of `octet inspect --format=dot`, and
the check counter.

Environment (set by CTest's octet_py_test): OCTET (the binary),
OCTET_SHARED (the shared/ folder)."""
import os
import re
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("OCTET_SHARED", os.path.join(SRC, "..", "shared"))
OCTET = os.environ.get("OCTET", os.path.join(SRC, "build", "octet"))
SKIP = 77


def octet(*args, check=True):
    r = subprocess.run([OCTET, *args], capture_output=True, text=True, timeout=600)
    if check and r.returncode:
        raise SystemExit(f"FAIL: octet {' '.join(args)}: exit {r.returncode}\n{r.stderr}")
    return r


# A quoted DOT string or a bare word, as the attribute values of Octet's
# output are written.
_VALUE = r'"((?:[^"\\]|\\.)*)"|([^,\]\s]+)'
_ATTR = re.compile(r'\s*(\w+)=(?:' + _VALUE + r')\s*,?')
_NODE = re.compile(r'^\s*(\w+) \[(.*)\];$')


def parse_attrs(text):
    attrs, pos = {}, 0
    while pos < len(text):
        m = _ATTR.match(text, pos)
        if not m:
            raise ValueError(f"cannot parse attributes at {text[pos:pos + 40]!r}")
        attrs[m.group(1)] = m.group(2) if m.group(2) is not None else m.group(3)
        pos = m.end()
    return attrs


def parse_dot_nodes(dot):
    """Node statements of the DOT text: {id: attrs}, attribute values
    unquoted (escapes left as written).  Edge and graph-attribute lines are
    skipped; a line that looks like a node statement but does not parse is
    an error."""
    nodes = {}
    for line in dot.splitlines():
        if "->" in line:
            continue
        m = _NODE.match(line)
        if m and m.group(1) not in ("node", "edge", "graph"):
            nodes[m.group(1)] = parse_attrs(m.group(2))
    return nodes


class Report:
    """Counts checks and prints the closing 'N passed, N failed' line."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL:", what)
        return ok

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        return 1 if self.failed or not self.passed else 0
