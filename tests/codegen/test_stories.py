"""stories260k (../shared/models/stories260k, a trained Llama-style model)
compiled: its prefill graph and its KV-cache decode graph run through the
JIT (`octet run --jit`, the same module `octet compile` writes) and through
the reference interpreter (`octet run`) on real tokens of the TinyStories
evaluation split, and every output (logits and the present keys and values
of the 5 layers) must agree within 1e-5 * max(1, max|want|).  ONNX Runtime
on the same graphs is the independent oracle: within 1e-4 of it, and the
same greedy next token.  The decode step continues the prefill: its cache
holds the prefill's keys and values in the first 64 of 128 slots (the rest
masked out) and it scores the 65th token."""
import os
import sys

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

SHARED = os.environ.get("OCTET_SHARED", "../shared")
MODELS = os.path.join(SHARED, "models", "stories260k")
TOKENS = os.path.join(SHARED, "data", "tinystories", "eval_tokens.npy")
LAYERS = 5
failures = 0


def check(cond, what):
    global failures
    print(("PASS " if cond else "FAIL ") + what)
    failures += not cond


def outputs_of(model, feeds, jit):
    extra = ["--jit"] if jit else []
    return cgutil.run_ref(model, list(feeds.items()), extra)


def compare(name, model, feeds):
    ref = outputs_of(model, feeds, jit=False)
    jit = outputs_of(model, feeds, jit=True)
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    want = dict(zip(names, sess.run(None, feeds)))
    check(sorted(ref) == sorted(cgutil.safe_name(n) for n in names),
          "%s: the interpreter gives every output (%d)" % (name, len(ref)))
    for n in names:
        key = cgutil.safe_name(n)
        ok, how = cgutil.close(jit.get(key, np.zeros(0)), ref[key], 1e-5)
        check(ok, "%s %s: compiled equals the interpreter within 1e-5 (%s)" % (name, n, how))
        ok, how = cgutil.close(jit.get(key, np.zeros(0)), want[n], 1e-4)
        check(ok, "%s %s: compiled within 1e-4 of ONNX Runtime (%s)" % (name, n, how))
    logits = jit.get("logits")
    if logits is not None:
        check(int(np.argmax(logits[0, -1])) == int(np.argmax(want["logits"][0, -1])),
              "%s: the greedy next token is ONNX Runtime's" % name)
    return jit


def main():
    for path in (os.path.join(MODELS, "prefill_s64.onnx"), os.path.join(MODELS, "decode_p128.onnx"),
                 TOKENS):
        if not os.path.exists(path):
            print("SKIP: needs %s (not found)" % path)
            return 77
    tokens = np.load(TOKENS).astype(np.int64)
    ids = tokens[:64].reshape(1, 64)
    pre = compare("prefill_s64", os.path.join(MODELS, "prefill_s64.onnx"), {"input_ids": ids})

    feeds = {"input_ids": tokens[64:65].reshape(1, 1),
             "position_ids": np.array([[64]], np.int64)}
    mask = np.zeros((1, 129), np.int64)
    mask[0, :64] = 1
    mask[0, 128] = 1
    feeds["attention_mask"] = mask
    for layer in range(LAYERS):
        for kv in ("key", "value"):
            cache = np.zeros((1, 4, 128, 8), np.float32)
            cache[:, :, :64, :] = pre["present.%d.%s" % (layer, kv)]
            feeds["past_key_values.%d.%s" % (layer, kv)] = cache
    compare("decode_p128", os.path.join(MODELS, "decode_p128.onnx"), feeds)
    print("%d failed" % failures if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
