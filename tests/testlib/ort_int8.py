"""ONNX Runtime as an exact oracle for u8 x s8 integer ops on any x86 CPU.

ONNX Runtime (MLAS) picks its int8 GEMM kernels by CPUID.  With a VNNI or
AMX dot product (avx512_vnni, avx_vnni, amx_int8) its u8 x s8 products are
summed exactly in int32.  On AVX2 alone it sums pairs of u8 x s8 products in
16 bits (vpmaddubsw), which saturates with full-range int8 weights, so its
MatMulInteger, ConvInteger, QLinearMatMul and QLinearConv results (and the
QDQ models it fuses into them) are not the spec's.  Its u8 x u8 and s8 x s8
kernels are exact on every CPU.

for_ort(m) returns the model to give ONNX Runtime: on a CPU where its u8 x s8
kernels are exact, m itself; elsewhere a copy in which every int8 weight
operand of those ops (and of ONNX Runtime's QGemm, MatMulIntegerToFloat and
DynamicQuantizeMatMul) that meets a uint8 activation is shifted into
uint8 (+128), with its zero point shifted alike.  (w - zw) is unchanged, so
the copy computes the same integers, on ONNX Runtime's exact u8 x u8 kernels.

session(ort, m) opens a CPU session on for_ort(m), at graph optimization
"basic" for a QDQ model where the fused kernels are inexact (Q/DQ computed as
the spec writes them), at the default level elsewhere."""
import copy

import numpy as np
from onnx import TensorProto, helper, numpy_helper

# (domain, op) -> (activation input or None when the op quantizes a float
# activation to uint8 itself, its zero-point input, weight input, weight
# zero-point input)
_WEIGHT_OPERANDS = {
    ("", "MatMulInteger"): (0, 2, 1, 3),
    ("", "ConvInteger"): (0, 2, 1, 3),
    ("", "QLinearMatMul"): (0, 2, 3, 5),
    ("", "QLinearConv"): (0, 2, 3, 5),
    ("com.microsoft", "QGemm"): (0, 2, 3, 5),
    ("com.microsoft", "MatMulIntegerToFloat"): (0, 4, 1, 5),
    ("com.microsoft", "DynamicQuantizeMatMul"): (None, None, 1, 3),
}


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def u8s8_exact():
    """Whether ONNX Runtime's u8 x s8 kernels are exact on this CPU."""
    return bool(cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


def _elem_types(m):
    """Element type of every value whose type ONNX shape inference or the
    graph tells."""
    from onnx import shape_inference
    try:
        g = shape_inference.infer_shapes(m).graph
    except Exception:  # noqa: BLE001  (contrib ops or a bad model: the graph's own types)
        g = m.graph
    types = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        types[vi.name] = vi.type.tensor_type.elem_type
    for t in g.initializer:
        types[t.name] = t.data_type
    return types


def _shift_nodes(g, name, fresh, out_nodes):
    """Appends to out_nodes the nodes computing uint8(name + 128) from an
    int8 value; returns the new value's name."""
    wide, plus, out = fresh(name + "_i32"), fresh(name + "_p128"), fresh(name + "_u8")
    c128 = fresh(name + "_c128")
    g.initializer.append(numpy_helper.from_array(np.array(128, np.int32), c128))
    out_nodes += [
        helper.make_node("Cast", [name], [wide], to=TensorProto.INT32),
        helper.make_node("Add", [wide, c128], [plus]),
        helper.make_node("Cast", [plus], [out], to=TensorProto.UINT8),
    ]
    return out


def _act_type(node, a, az, types):
    """The activation's element type; where inference could not tell (a
    contrib producer), its zero point's, which has the same type."""
    t = types.get(node.input[a])
    if not t and az < len(node.input) and node.input[az]:
        t = types.get(node.input[az])
    return t


def for_ort(m):
    if u8s8_exact():
        return m
    m = copy.deepcopy(m)
    g = m.graph
    types = _elem_types(m)
    inits = {t.name: t for t in g.initializer}
    used = {n for node in g.node for n in list(node.input) + list(node.output)} | set(types)
    counter = [0]

    def fresh(base):
        while True:
            counter[0] += 1
            name = f"{base}_ortu8_{counter[0]}"
            if name not in used:
                used.add(name)
                return name

    shifted, nodes = {}, []
    for node in g.node:
        ops = _WEIGHT_OPERANDS.get(("" if node.domain == "ai.onnx" else node.domain,
                                    node.op_type))
        if ops is None or len(node.input) <= ops[2] \
                or (ops[0] is not None and _act_type(node, ops[0], ops[1], types) != TensorProto.UINT8) \
                or types.get(node.input[ops[2]]) != TensorProto.INT8:
            nodes.append(node)
            continue
        _, _, w, wz = ops
        ins = list(node.input) + [""] * max(0, wz + 1 - len(node.input))
        for k in (w, wz):
            src = ins[k]
            if not src:  # an absent int8 zero point is 0: uint8 128
                ins[k] = fresh("wzp")
                g.initializer.append(numpy_helper.from_array(np.array(128, np.uint8), ins[k]))
                continue
            if src not in shifted:
                if src in inits:
                    q = numpy_helper.to_array(inits[src]).astype(np.int32) + 128
                    shifted[src] = fresh(src)
                    g.initializer.append(numpy_helper.from_array(q.astype(np.uint8), shifted[src]))
                else:  # computed or fed at run time: shifted in the graph
                    shifted[src] = _shift_nodes(g, src, fresh, nodes)
            ins[k] = shifted[src]
        del node.input[:]
        node.input.extend(ins)
        nodes.append(node)
    del g.node[:]
    g.node.extend(nodes)
    still = {n for node in g.node for n in node.input} | {o.name for o in g.output}
    keep = [t for t in g.initializer if t.name not in shifted or t.name in still]
    del g.initializer[:]
    g.initializer.extend(keep)
    return m


def _has_qdq(m):
    graphs, seen = [m.graph], False
    while graphs and not seen:
        g = graphs.pop()
        for node in g.node:
            seen |= node.op_type == "DequantizeLinear"
            graphs += [a.g for a in node.attribute if a.HasField("g")]
    return seen


def session_options_qdq(ort, m=None):
    """SessionOptions for m (any model when m is None): graph optimization
    "basic" when ONNX Runtime would fuse m's Q/DQ into inexact kernels."""
    so = ort.SessionOptions()
    if not u8s8_exact() and (m is None or _has_qdq(m)):
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return so


def session(ort, m, so=None):
    """An ONNX Runtime CPU session on model m (a ModelProto, its bytes or a
    path) whose
    integer results are the spec's on this CPU: for_ort(m), and "basic"
    graph optimization for QDQ models where the fused kernels are inexact.
    SessionOptions so, when given, are kept (only the level may be lowered)."""
    import onnx
    if isinstance(m, (bytes, bytearray)):
        m = onnx.load_from_string(bytes(m))
    elif not isinstance(m, onnx.ModelProto):
        m = onnx.load(m)
    m2 = for_ort(m)
    opts = so or ort.SessionOptions()
    if not u8s8_exact() and _has_qdq(m) and \
            int(opts.graph_optimization_level) > int(ort.GraphOptimizationLevel.ORT_ENABLE_BASIC):
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return ort.InferenceSession(m2.SerializeToString(), opts, providers=["CPUExecutionProvider"])
