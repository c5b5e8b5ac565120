"""Shared helpers of the `octet inspect` tests: paths, running octet, and a
parser for the text format documented in src/ir/print.c / docs/inspect.md.

Environment (set by CTest's octet_py_test): OCTET (the binary), OCTET_SHARED
(the shared/ folder with models)."""
import os
import re
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN_DIR = os.path.join(HERE, "golden")
SHARED = os.environ.get("OCTET_SHARED",
                        os.path.join(HERE, "..", "..", "..", "shared"))
OCTET = os.environ.get("OCTET",
                       os.path.join(HERE, "..", "..", "build", "octet"))

# Golden models: name -> path relative to shared/models.
GOLDEN_MODELS = {
    "mnist-8": "mnist-8/model.onnx",
    "squeezenet1.1": "squeezenet1.1/model.onnx",
    "iris-mlp": "iris-mlp/model.onnx",
    "cifar10-cnn": "cifar10-cnn/model.onnx",
    "mnist-mlp-bn": "mnist-mlp-bn/model.onnx",
    "ppocr-cls": "ppocr-cls/model.onnx",
    "ultraface-rfb320": "ultraface-rfb320/model.onnx",
    "silero-vad-lstm-if": "unsupported/silero-vad-lstm-if.onnx",
    "candy-legacy-ops": "unsupported/candy-legacy-ops.onnx",
}


def model_path(name):
    """The golden model's path; skips the test when ../shared lacks it."""
    from shared_data import need
    return os.path.join(need("models/" + GOLDEN_MODELS[name]), "models", GOLDEN_MODELS[name])


def inspect(path, *args):
    """Runs `octet inspect PATH ARGS`; returns the CompletedProcess (bytes)."""
    return subprocess.run([OCTET, "inspect", path, *args],
                          capture_output=True, timeout=120)


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


# ---- the text format --------------------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_.:/\-]+")
_ESC = {"n": b"\n", "t": b"\t", "r": b"\r", '"': b'"', "\\": b"\\"}


def parse_quoted(s, i):
    """Decodes the quoted string starting at s[i] == '"'; returns (bytes, next)."""
    assert s[i] == '"', s[i:]
    out = bytearray()
    j = i + 1
    while s[j] != '"':
        if s[j] == "\\":
            c = s[j + 1]
            if c == "x":
                out.append(int(s[j + 2:j + 4], 16))
                j += 4
            else:
                out += _ESC[c]
                j += 2
        else:
            out += s[j].encode()
            j += 1
    return bytes(out), j + 1


def parse_name(s, i):
    """A NAME token at s[i]: bare or quoted.  Returns (str, next).  Bare names
    never end in ':', so a ':' that ends the match is the type separator."""
    if s[i] == '"':
        raw, j = parse_quoted(s, i)
        return raw.decode("utf-8", "surrogateescape"), j
    m = _BARE.match(s, i)
    assert m, s[i:]
    tok = m.group(0)
    if tok.endswith(":"):
        tok = tok[:-1]
    return tok, i + len(tok)


def skip_type(s, i):
    """Returns the end of the TYPE text starting at s[i] (stops at ',' or ')'
    outside brackets and quotes)."""
    depth = 0
    while i < len(s):
        c = s[i]
        if c == '"':
            _, i = parse_quoted(s, i)
            continue
        if c in "[<(":
            depth += 1
        elif c in "]>)":
            if depth == 0:
                return i
            depth -= 1
        elif c == "," and depth == 0:
            return i
        i += 1
    return i


def parse_value_list(s, i):
    """Parses '(NAME[: TYPE], ...)' at s[i]; returns ([(name, type)], next)."""
    assert s[i] == "(", s[i:]
    i += 1
    vals = []
    while s[i] != ")":
        name, i = parse_name(s, i)
        typ = None
        if s.startswith(": ", i):
            end = skip_type(s, i + 2)
            typ = s[i + 2:end]
            i = end
        vals.append((name, typ))
        if s.startswith(", ", i):
            i += 2
    return vals, i + 1


def parse_node_line(line):
    """'node OP[@DOMAIN] NAME (ins) -> (outs) ...' -> dict."""
    assert line.startswith("node ")
    i = 5
    op, i = parse_name(line, i)
    domain = ""
    if line[i] == "@":
        domain, i = parse_name(line, i + 1)
    assert line[i] == " "
    name, i = parse_name(line, i + 1)
    assert line[i] == " "
    ins, i = parse_value_list(line, i + 1)
    assert line.startswith(" -> ", i), line[i:]
    outs, i = parse_value_list(line, i + 4)
    return {"op": op, "domain": domain, "name": name, "inputs": ins,
            "outputs": outs, "rest": line[i:]}


def parse_value_line(line):
    """'KIND NAME[: TYPE] ...' -> (kind, name, type or None, rest)."""
    kind, _, rest = line.partition(" ")
    name, i = parse_name(rest, 0)
    typ = None
    if rest.startswith(": ", i):
        end = skip_type(rest, i + 2)
        if kind == "init":  # TENSOR: DT[DIMS] storage #H [= [...]]
            end = rest.index("]", i) + 1
        typ = rest[i + 2:end]
        i = end
    return kind, name, typ, rest[i:]


# ---- a model whose names need escaping ---------------------------------------

ODD_GRAPH = 'odd graph "name" {x}'
ODD_INPUT = 'in "quoted" \\ back{slash} <tag> & ;'
ODD_RELU = 'relu\n"node" #1'
ODD_MID = "mid \u00e9\u2192\u00fc"     # valid UTF-8: e-acute, arrow, u-umlaut
BAD_PLACEHOLDER = "BADUTF8X"              # patched to invalid UTF-8 below
BAD_BYTES = b"bad\xff\xfe\xc3(z"          # same length: 8 bytes
ODD_OUTPUT = "out\tput\x01"


def make_odd_model(path):
    """Writes a small model with quotes, backslashes, braces, newlines, a tab,
    a control character, non-ASCII UTF-8 and (patched into the bytes) an
    invalid UTF-8 name.  Returns the number of nodes and the unpatched
    onnx.ModelProto (onnx cannot hold the invalid bytes itself)."""
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info(ODD_INPUT, TensorProto.FLOAT,
                                      ['batch size,"b"', 2])
    y = helper.make_tensor_value_info(ODD_OUTPUT, TensorProto.FLOAT,
                                      ['batch size,"b"', 2])
    w = helper.make_tensor("w\\eight", TensorProto.FLOAT, [2], [0.5, -1.25])
    nodes = [
        helper.make_node("Relu", [ODD_INPUT], [ODD_MID], name=ODD_RELU),
        helper.make_node("Mul", [ODD_MID, "w\\eight"], [BAD_PLACEHOLDER],
                         name="mul {a} [b]"),
        helper.make_node("Weird Op", [BAD_PLACEHOLDER], ["weird out"],
                         name="", domain="com.odd.domain", note="say \"hi\"\n"),
        helper.make_node("Add", ["weird out", BAD_PLACEHOLDER], [ODD_OUTPUT],
                         name="add\\end"),
    ]
    graph = helper.make_graph(nodes, ODD_GRAPH, [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[
        helper.make_opsetid("", 13), helper.make_opsetid("com.odd.domain", 1)])
    data = model.SerializeToString()
    assert data.count(BAD_PLACEHOLDER.encode()) == 3
    data = data.replace(BAD_PLACEHOLDER.encode(), BAD_BYTES)
    with open(path, "wb") as f:
        f.write(data)
    return model
