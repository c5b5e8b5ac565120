"""Trains the bundled default model, a small CNN for Fashion-MNIST, with
numpy alone, and writes it as ONNX (the model under models/fashion-cnn/).

The data are Debian's dataset-fashion-mnist package (the four idx files in
/usr/share/datasets/fashion-mnist), the network is

    Conv(1->8, 3x3, pad 1) Relu MaxPool(2x2)     28x28 -> 14x14
    Conv(8->16, 3x3, pad 1) Relu MaxPool(2x2)    14x14 -> 7x7
    Flatten  Gemm(784 -> 10)

and training is Adam on the softmax cross-entropy, minibatches of 64,
everything seeded, so that the same numpy gives the same file.  Images are
normalised as x = pixel / 255 (float32 in [0, 1]); scripts/demo.py reads
the package the same way (load_idx and normalise below are imported by it).
The convolutions are im2col products, their gradients the transposed
products and a col2im that adds the nine shifted slices back.

    .venv/bin/python tools/train_fashion_cnn.py [-o models/fashion-cnn/fashion-cnn.onnx]
        [--epochs 4] [--seed 0] [--data /usr/share/datasets/fashion-mnist]

It prints the loss per epoch and the test accuracy over the 10000 test
images, checked against ONNX Runtime running the written file."""
import argparse
import gzip
import os
import sys
import time

# one core: a fixed OpenBLAS thread count also keeps the sums' order fixed
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "models", "fashion-cnn", "fashion-cnn.onnx")


def load_idx(path):
    """Reads an idx file (gzip or not): magic 0x0000 TT DD, DD big-endian
    uint32 dimensions, then the data (TT = 0x08: unsigned bytes)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data for dims {dims}")
    return data.reshape(dims)


def load_split(data_dir, split):
    """split 'train' or 't10k': (images u8 [N,28,28], labels u8 [N])."""
    def find(name):
        for p in (os.path.join(data_dir, name + ".gz"), os.path.join(data_dir, name)):
            if os.path.exists(p):
                return p
        raise FileNotFoundError(f"{os.path.join(data_dir, name)}[.gz] not found "
                                "(apt-get install dataset-fashion-mnist)")
    return (load_idx(find(f"{split}-images-idx3-ubyte")),
            load_idx(find(f"{split}-labels-idx1-ubyte")))


def normalise(images_u8):
    """u8 [N,28,28] -> float32 [N,1,28,28] in [0, 1]: the model's input."""
    return (images_u8.astype(np.float32) / np.float32(255.0))[:, None, :, :]


# ---- layers (NCHW, float32) ----

def conv_forward(x, w, b):
    """3x3 convolution, stride 1, pad 1: returns (y, cols) with cols the
    im2col matrix [N*H*W, C*9] kept for the backward pass."""
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))  # N,C,H,W,3,3
    cols = np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(n * h * wd, c * 9)
    y = cols @ w.reshape(w.shape[0], -1).T + b
    return np.ascontiguousarray(y.reshape(n, h, wd, -1).transpose(0, 3, 1, 2)), cols


def conv_backward(dy, cols, x_shape, w):
    n, c, h, wd = x_shape
    o = w.shape[0]
    dyf = dy.transpose(0, 2, 3, 1).reshape(-1, o)
    dw = (dyf.T @ cols).reshape(w.shape)
    db = dyf.sum(0)
    dcols = (dyf @ w.reshape(o, -1)).reshape(n, h, wd, c, 3, 3)
    dxp = np.zeros((n, c, h + 2, wd + 2), np.float32)
    for i in range(3):
        for j in range(3):
            dxp[:, :, i:i + h, j:j + wd] += dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dxp[:, :, 1:-1, 1:-1], dw, db


def pool_forward(x):
    """2x2 max pooling, stride 2; the mask marks the first maximum of each
    window (ties are common: a background window is four equal values)."""
    n, c, h, w = x.shape
    r = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, h // 2, w // 2, 4)
    arg = r.argmax(-1)
    mask = arg[..., None] == np.arange(4)
    return np.take_along_axis(r, arg[..., None], -1)[..., 0], mask


def pool_backward(dy, mask):
    n, c, h2, w2, _ = mask.shape
    d = (mask * dy[..., None]).reshape(n, c, h2, w2, 2, 2)
    return d.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h2 * 2, w2 * 2)


def init_params(rng):
    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    return {
        "conv1.w": he((8, 1, 3, 3), 9), "conv1.b": np.zeros(8, np.float32),
        "conv2.w": he((16, 8, 3, 3), 72), "conv2.b": np.zeros(16, np.float32),
        "fc.w": he((10, 784), 784), "fc.b": np.zeros(10, np.float32),
    }


def forward(p, x, keep=False):
    a1, c1 = conv_forward(x, p["conv1.w"], p["conv1.b"])
    r1 = np.maximum(a1, 0)
    p1, m1 = pool_forward(r1)
    a2, c2 = conv_forward(p1, p["conv2.w"], p["conv2.b"])
    r2 = np.maximum(a2, 0)
    p2, m2 = pool_forward(r2)
    f = p2.reshape(len(x), -1)
    logits = f @ p["fc.w"].T + p["fc.b"]
    if keep:
        return logits, (x.shape, c1, a1, m1, p1.shape, c2, a2, m2, p2.shape, f)
    return logits


def loss_and_grads(p, x, y):
    logits, (xs, c1, a1, m1, p1s, c2, a2, m2, p2s, f) = forward(p, x, keep=True)
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    prob = e / e.sum(1, keepdims=True)
    n = len(x)
    loss = float(-np.mean(np.log(prob[np.arange(n), y] + 1e-12)))
    dl = prob
    dl[np.arange(n), y] -= 1
    dl /= n
    g = {"fc.w": dl.T @ f, "fc.b": dl.sum(0)}
    dp2 = (dl @ p["fc.w"]).reshape(p2s)
    da2 = pool_backward(dp2, m2) * (a2 > 0)
    dp1, g["conv2.w"], g["conv2.b"] = conv_backward(da2, c2, p1s, p["conv2.w"])
    da1 = pool_backward(dp1, m1) * (a1 > 0)
    _, g["conv1.w"], g["conv1.b"] = conv_backward(da1, c1, xs, p["conv1.w"])
    return loss, g


def predict(p, x, batch=1000):
    return np.concatenate([forward(p, x[i:i + batch]) for i in range(0, len(x), batch)])


def train(x, y, epochs, seed, log):
    rng = np.random.default_rng(seed)
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    lr, b1, b2, eps, bs, t = 2e-3, 0.9, 0.999, 1e-8, 64, 0
    for ep in range(epochs):
        if ep == epochs - 1:
            lr *= 0.3                       # a gentler last epoch
        order = rng.permutation(len(x))
        total, t0 = 0.0, time.perf_counter()
        for s in range(0, len(x), bs):
            idx = order[s:s + bs]
            loss, g = loss_and_grads(p, x[idx], y[idx])
            total += loss * len(idx)
            t += 1
            for k in p:
                m[k] = b1 * m[k] + (1 - b1) * g[k]
                v[k] = b2 * v[k] + (1 - b2) * g[k] * g[k]
                mh = m[k] / (1 - b1 ** t)
                vh = v[k] / (1 - b2 ** t)
                p[k] = (p[k] - lr * mh / (np.sqrt(vh) + eps)).astype(np.float32)
        log(f"epoch {ep + 1}/{epochs}: loss {total / len(x):.4f} ({time.perf_counter() - t0:.0f} s)")
    return p


def to_onnx(p, path):
    """Writes the model (opset 13): input 'input' f32[N,1,28,28], output
    'logits' f32[N,10], N symbolic.  Written to path.tmp, then renamed."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    inits = [numpy_helper.from_array(p[k], k) for k in
             ("conv1.w", "conv1.b", "conv2.w", "conv2.b", "fc.w", "fc.b")]
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    pool = dict(kernel_shape=[2, 2], strides=[2, 2])
    nodes = [
        helper.make_node("Conv", ["input", "conv1.w", "conv1.b"], ["conv1"], "conv1", **conv),
        helper.make_node("Relu", ["conv1"], ["relu1"], "relu1"),
        helper.make_node("MaxPool", ["relu1"], ["pool1"], "pool1", **pool),
        helper.make_node("Conv", ["pool1", "conv2.w", "conv2.b"], ["conv2"], "conv2", **conv),
        helper.make_node("Relu", ["conv2"], ["relu2"], "relu2"),
        helper.make_node("MaxPool", ["relu2"], ["pool2"], "pool2", **pool),
        helper.make_node("Flatten", ["pool2"], ["flat"], "flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], "fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "fashion_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="octet tools/train_fashion_cnn.py")
    model.ir_version = 7
    model.doc_string = ("Fashion-MNIST CNN; input: pixel/255 as float32 [N,1,28,28]; "
                        "output: logits of the 10 classes")
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(model.SerializeToString())
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", default=DEFAULT_OUT)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=DATA)
    a = ap.parse_args()

    def log(msg):
        print(msg, flush=True)

    xtr, ytr = load_split(a.data, "train")
    xte, yte = load_split(a.data, "t10k")
    xtr, xte = normalise(xtr), normalise(xte)
    ytr, yte = ytr.astype(np.int64), yte.astype(np.int64)
    log(f"train {len(xtr)} images, test {len(xte)} images ({a.data})")
    t0 = time.perf_counter()
    p = train(xtr, ytr, a.epochs, a.seed, log)
    log(f"trained in {time.perf_counter() - t0:.0f} s")
    logits = predict(p, xte)
    acc = float(np.mean(logits.argmax(1) == yte))
    log(f"test accuracy (numpy): {acc:.2%}")
    to_onnx(p, a.output)
    log(f"wrote {a.output} ({os.path.getsize(a.output)} bytes)")

    import onnxruntime as ort
    s = ort.InferenceSession(a.output, providers=["CPUExecutionProvider"])
    got = s.run(["logits"], {"input": xte})[0]
    diff = float(np.max(np.abs(got - logits)))
    ort_acc = float(np.mean(got.argmax(1) == yte))
    log(f"test accuracy (ONNX Runtime): {ort_acc:.2%}; max |ORT - numpy| = {diff:.2e}")
    if diff > 1e-3 or abs(ort_acc - acc) > 1e-3:
        sys.exit("the written model does not match the numpy forward pass")


if __name__ == "__main__":
    main()
