"""`octet generate` and `octet eval` on stories260k (issue 14), against
oracles that share no code with Octet:

  greedy, greedy-jit  200 greedy tokens from BOS with decode_p256.onnx equal
                      the ids of llama2.c's numpy reference (tools/llama2c_ref.py,
                      KV-cache steps) and their text is the start of the sample
                      printed in MODEL_CARD.md (interpreter, then --jit); a
                      copy of decode_p128 with symbolic lengths gives them too
  sampling            --temperature/--top-k/--seed draw the ids that the PRNG
                      and rule documented in octet.h draw from ONNX Runtime's
                      logits (a numpy decode loop over the same graph); the same
                      seed repeats, --top-k 1 is greedy
  eval, eval-jit      perplexity on the first windows of eval_tokens.npy equals
                      ONNX Runtime's on the same graph and windows (1e-4
                      relative), with the full window and a shorter padded one
  bad                 an id outside the vocabulary, a prompt longer than the
                      cache, graphs outside the decode convention and malformed
                      tokenizer files: exit 2 or 3, the diagnostic naming the
                      input or file
  tokenizer           encode matches llama2c_ref.py's Tokenizer (run.c's BPE)
                      and decode gives the text back
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

from shared_data import need

OCTET = os.environ.get("OCTET", "build/octet")
SH = need("models/stories260k/decode_p256.onnx", "models/stories260k/tok512.bin",
          "models/stories260k/tools/llama2c_ref.py", "data/tinystories/eval_tokens.npy")
MD = os.path.join(SH, "models", "stories260k")
TOK = os.path.join(MD, "tok512.bin")
TOKENS = os.path.join(SH, "data", "tinystories", "eval_tokens.npy")
sys.path.insert(0, os.path.join(MD, "tools"))
import llama2c_ref  # noqa: E402

failures, checks = [], 0


def check(ok, what):
    global checks
    checks += 1
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def octet(*args, timeout=900):
    return subprocess.run([OCTET] + [str(a) for a in args], capture_output=True,
                          timeout=timeout)


def ids_of(res):
    return [int(x) for x in res.stdout.decode().split()]


def model_card_sample():
    text = open(os.path.join(MD, "MODEL_CARD.md"), encoding="utf-8").read()
    start = text.index("-t 0.0\n") + len("-t 0.0\n")
    return text[start:text.index("```", start)]


def reference_greedy(n):
    ref = llama2c_ref.Llama2cRef(os.path.join(MD, "tools", "stories260K.bin"))
    cache, tok, out = ref.new_cache(), 1, []
    for pos in range(n):
        tok = int(np.argmax(ref.step(tok, pos, cache)))
        out.append(tok)
    return out


def test_greedy(jit):
    flags = ["--jit"] if jit else []
    dec = os.path.join(MD, "decode_p256.onnx")
    res = octet("generate", dec, "--prompt-ids", "1", "-n", 200, *flags)
    check(res.returncode == 0, f"generate exits 0 ({res.stderr.decode()[-300:]})")
    got = ids_of(res)
    want = reference_greedy(200)
    first_diff = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
    check(len(got) == 200 and got == want,
          f"200 greedy ids equal llama2.c's reference (first difference at {first_diff})")
    stderr = res.stderr.decode()
    check("prefill: 1 token" in stderr and "decode: 199 tokens" in stderr
          and "tokens/s" in stderr, "speed of prefill and decode on stderr")
    # text through the tokenizer (the ids are checked above: once is enough
    # for the slow JIT compilation), with a prefill graph for a text prompt
    sample = model_card_sample()
    if not jit:
        res = octet("generate", dec, "--tokenizer", TOK, "-n", 200)
        text = res.stdout.decode("utf-8")
        tokenizer = llama2c_ref.Tokenizer(TOK)
        check(res.returncode == 0 and text.endswith("\n"), "generate with a tokenizer exits 0")
        check(text[:-1] == tokenizer.decode([1] + want),
              "printed text is the reference decoding of the ids")
        check(len(text) > 400 and sample.startswith(text[:-1]),
              f"the text is the start of MODEL_CARD.md's sample ({len(text) - 1} characters)")
    if not jit:
        test_symbolic_cache(want)
    res = octet("generate", dec, "--tokenizer", TOK, "--prompt", "Once upon a time",
                "--prefill", os.path.join(MD, "prefill_s64.onnx"), "-n", 30, *flags)
    text = res.stdout.decode("utf-8")
    check(res.returncode == 0 and sample.startswith(text[:-1]) and len(text) > 100,
          "a text prompt through the prefill graph continues like the sample")


def test_symbolic_cache(want):
    """decode_p128 with the batch, past and total lengths symbolic, as Hugging
    Face Optimum exports them: --cache-size picks the slots."""
    import onnx
    m = onnx.load(os.path.join(MD, "decode_p128.onnx"))
    for v in list(m.graph.input) + list(m.graph.output):
        dims = v.type.tensor_type.shape.dim
        dims[0].dim_param = "batch"
        if v.name.startswith("past_key_values"):
            dims[2].dim_param = "past"
        if v.name == "attention_mask" or v.name.startswith("present"):
            dims[-1 if v.name == "attention_mask" else 2].dim_param = "total"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "symbolic.onnx")
        onnx.save(m, path)
        res = octet("generate", path, "--prompt-ids", "1", "-n", 150, "--cache-size", 200)
        check(res.returncode == 0 and ids_of(res) == want[:150],
              "symbolic past length, --cache-size 200: 150 greedy ids as the reference")
        res = octet("generate", path, "--prompt-ids", "1", "-n", 20, "--cache-size", 8)
        check(res.returncode == 2 and b"past_key_values.0.key" in res.stderr,
              "symbolic past length, --cache-size 8 for 20 tokens: exit 2 naming the cache")


def ort_greedy_loop(path, prompt, n, pick):
    """A numpy decode loop over the graph with ONNX Runtime, keeping the cache
    as stories260k's README says; pick(logits) chooses each token."""
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ins = {i.name: i for i in sess.get_inputs()}
    layers = sum(1 for k in ins if k.endswith(".key"))
    h, p, d = ins["past_key_values.0.key"].shape[1:]
    past = {f"past_key_values.{l}.{kv}": np.zeros((1, h, p, d), np.float32)
            for l in range(layers) for kv in ("key", "value")}
    mask = np.zeros((1, p + 1), np.int64)
    mask[0, p] = 1
    out, pos, feed_tok = [], 0, list(prompt)
    while len(out) < n:
        tok = feed_tok.pop(0)
        res = sess.run(None, {"input_ids": np.array([[tok]], np.int64),
                              "position_ids": np.array([[pos]], np.int64),
                              "attention_mask": mask, **past})
        names = [o.name for o in sess.get_outputs()]
        got = dict(zip(names, res))
        for l in range(layers):
            for kv in ("key", "value"):
                past[f"past_key_values.{l}.{kv}"][:, :, pos, :] = got[f"present.{l}.{kv}"][:, :, p, :]
        mask[0, pos] = 1
        pos += 1
        if not feed_tok:
            nxt = pick(got["logits"][0, -1])
            out.append(nxt)
            feed_tok.append(nxt)
    return out


class DocumentedSampler:
    """octet.h's sampling rule: splitmix64(seed) seeds xorshift64*, u =
    (x * M >> 40) / 2^24, candidates by decreasing logit then id, top-k,
    softmax(logit / T), the first id whose running sum exceeds u * total."""
    MASK = (1 << 64) - 1

    def __init__(self, seed, temperature, top_k):
        z = (seed + 0x9E3779B97F4A7C15) & self.MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.MASK
        self.state = (z ^ (z >> 31)) or 1
        self.t, self.k = temperature, top_k

    def unit(self):
        x = self.state
        x ^= x >> 12
        x ^= (x << 25) & self.MASK
        x ^= x >> 27
        self.state = x
        return (((x * 0x2545F4914F6CDD1D) & self.MASK) >> 40) / 16777216.0

    def __call__(self, logits):
        order = sorted(range(len(logits)), key=lambda i: (-float(logits[i]), i))
        k = self.k if 0 < self.k < len(order) else len(order)
        top = float(logits[order[0]])
        w = [math.exp((float(logits[i]) - top) / self.t) for i in order[:k]]
        target, cum = self.unit() * sum(w), 0.0
        for i, wi in zip(order[:k], w):
            cum += wi
            if cum > target:
                return i
        return order[k - 1]


def test_sampling():
    dec = os.path.join(MD, "decode_p256.onnx")
    prompt = [1, 403, 407]
    args = ["generate", dec, "--prompt-ids", ",".join(map(str, prompt)), "-n", 40]
    a = octet(*args, "--temperature", "0.8", "--top-k", "20", "--seed", "7")
    b = octet(*args, "--temperature", "0.8", "--top-k", "20", "--seed", "7")
    c = octet(*args, "--temperature", "0.8", "--top-k", "20", "--seed", "8")
    check(a.returncode == 0 and ids_of(a) == ids_of(b), "the same seed gives the same ids")
    check(ids_of(a) != ids_of(c), "another seed gives other ids")
    want = ort_greedy_loop(dec, prompt, 40, DocumentedSampler(7, 0.8, 20))
    check(ids_of(a) == want, "sampled ids equal the documented rule on ONNX Runtime's logits")
    greedy = octet(*args)
    top1 = octet(*args, "--temperature", "5", "--top-k", "1", "--seed", "3")
    want = ort_greedy_loop(dec, prompt, 40, lambda l: int(np.argmax(l)))
    check(ids_of(greedy) == want, "greedy after a 3-token prompt equals ONNX Runtime's loop")
    check(ids_of(top1) == ids_of(greedy), "--top-k 1 at any temperature is greedy")
    stop = octet(*args, "--stop-id", str(ids_of(greedy)[4]))
    check(ids_of(stop) == ids_of(greedy)[:ids_of(greedy).index(ids_of(greedy)[4]) + 1],
          "--stop-id ends generation after that id")


def ort_perplexity(path, tokens, window, windows):
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    s = sess.get_inputs()[0].shape[1]
    total, count = 0.0, 0
    for w in range(windows):
        win = tokens[w * window:(w + 1) * window].astype(np.int64)
        ids = np.zeros((1, s), np.int64)
        ids[0, :window] = win
        lg = sess.run(["logits"], {"input_ids": ids})[0][0, :window].astype(np.float64)
        top = lg.max(-1, keepdims=True)
        lse = np.log(np.exp(lg - top).sum(-1)) + top[:, 0]
        total += float((lse[:-1] - lg[np.arange(window - 1), win[1:]]).sum())
        count += window - 1
    return math.exp(total / count), count


def test_eval(jit):
    flags = ["--jit"] if jit else []
    tokens = np.load(TOKENS)
    pre = os.path.join(MD, "prefill_s128.onnx")
    with tempfile.TemporaryDirectory() as tmp:
        # the JIT compiles the graph per run: the full window only
        for window, windows in ((128, 8),) if jit else ((128, 8), (64, 4)):
            report = os.path.join(tmp, f"r{window}.json")
            res = octet("eval", pre, "--perplexity", TOKENS, "--window", window,
                        "--max-windows", windows, "--report", report, *flags)
            check(res.returncode == 0, f"eval window {window} exits 0 "
                  f"({res.stderr.decode()[-300:]})")
            if res.returncode:
                continue
            r = json.load(open(report))
            want, count = ort_perplexity(pre, tokens, window, windows)
            rel = abs(r["perplexity"] - want) / want
            check(rel < 1e-4 and r["targets"] == count and r["windows"] == windows,
                  f"window {window} x {windows}: perplexity {r['perplexity']:.6f} vs "
                  f"ONNX Runtime {want:.6f} (relative {rel:.1e}), {r['targets']} targets")
            check(abs(r["bits_per_token"] - math.log2(r["perplexity"])) < 1e-9,
                  "bits per token is log2(perplexity)")
            printed = [l for l in res.stdout.decode().splitlines() if l.startswith("perplexity:")]
            check(printed and abs(float(printed[0].split()[1]) - want) / want < 1e-4,
                  "perplexity printed on stdout")
            check(f"windows [{windows}/{windows}]" in res.stderr.decode(), "progress on stderr")


def test_bad():
    dec128 = os.path.join(MD, "decode_p128.onnx")
    dec = os.path.join(MD, "decode_p256.onnx")
    pre = os.path.join(MD, "prefill_s64.onnx")

    def expect(res, codes, needles, what):
        err = res.stderr.decode()
        ok = res.returncode in codes and all(n in err for n in needles)
        check(ok, f"{what}: exit {res.returncode}, diagnostic names {needles}"
              + ("" if ok else f" ({err.strip()[-400:]})"))

    expect(octet("generate", dec, "--prompt-ids", "1,600", "-n", 3), (2,),
           ["input_ids", "600", "vocabulary"], "token id >= vocabulary")
    expect(octet("generate", dec, "--prompt-ids", "1,512", "-n", 3), (2,),
           ["input_ids", "512", "vocabulary"], "token id == vocabulary size")
    expect(octet("generate", dec128, "--prompt-ids", ",".join(["1"] * 129), "-n", 1), (2,),
           ["past_key_values.0.key", "129"], "prompt longer than the cache")
    expect(octet("generate", dec128, "--prompt-ids", ",".join(["1"] * 100), "-n", 40), (2,),
           ["past_key_values.0.key"], "prompt + tokens longer than the cache")
    expect(octet("generate", pre, "--prompt-ids", "1", "-n", 3), (3,),
           ["attention_mask"], "a prefill graph is not a decode graph")
    expect(octet("eval", dec, "--perplexity", TOKENS, "--max-windows", 1), (3,),
           ["past_key_values.0.key"], "eval on a decode graph")
    with tempfile.TemporaryDirectory() as tmp:
        import onnx
        m = onnx.load(dec128)
        kept = [o for o in m.graph.output if o.name != "present.3.value"]
        del m.graph.output[:]
        m.graph.output.extend(kept)
        broken = os.path.join(tmp, "no_present.onnx")
        onnx.save(m, broken)
        expect(octet("generate", broken, "--prompt-ids", "1", "-n", 3), (3,),
               ["present.3.value"], "decode graph without one present output")
        bad_tokens = os.path.join(tmp, "tokens.npy")
        stream = np.load(TOKENS)[:256].copy()
        stream[200] = 512
        np.save(bad_tokens, stream)
        expect(octet("eval", os.path.join(MD, "prefill_s128.onnx"), "--perplexity",
                     bad_tokens), (2,), ["input_ids", "512", "tokens.npy", "vocabulary"],
               "eval stream with an id >= vocabulary")
        raw = open(TOK, "rb").read()
        # piece offsets: 4-byte header, then (score, length, bytes) records
        offsets, off = [], 4
        while off < len(raw):
            offsets.append(off)
            off += 8 + struct.unpack_from("<i", raw, off + 4)[0]
        cut = offsets[300] + 9
        assert raw[offsets[300] + 4] > 1   # piece 300 is longer than the byte kept
        for name, data, why in (
                ("cut_header.bin", raw[:offsets[300] + 5], "truncated piece header"),
                ("cut_piece.bin", raw[:cut], "past the end"),
                ("long_piece.bin", raw[:offsets[5] + 4] + struct.pack("<i", 1000)
                 + raw[offsets[5] + 8:], "larger than max_token_length"),
                ("empty.bin", b"", "too short"),
                ("one_piece.bin", struct.pack("<ifi", 7, 0.0, 1) + b"a", "no BOS piece")):
            path = os.path.join(tmp, name)
            open(path, "wb").write(data)
            expect(octet("generate", dec, "--tokenizer", path, "--prompt", "hi", "-n", 2),
                   (2,), [name, why], f"malformed tokenizer {name}")
        short = os.path.join(tmp, "short_vocab.bin")
        open(short, "wb").write(raw[:offsets[300]])
        expect(octet("generate", dec, "--tokenizer", short, "-n", 2), (2,),
               ["short_vocab.bin", "300"], "tokenizer with fewer pieces than the vocabulary")


def test_tokenizer(tool):
    ref = llama2c_ref.Tokenizer(TOK)
    sentences = [
        "Once upon a time, there was a little girl named Lily.",
        "Lily's mom said, \"Lily, let's go to the park.\"",
        "  two leading spaces, and two trailing  ",
        "Line one\nLine two\n\nafter a blank line",
        "caf\u00e9 na\u00efve \u2603 \u65e5\u672c 12345 ?!;:",
        "x",
    ]
    for text in sentences:
        res = subprocess.run([tool, TOK, "encode", text], capture_output=True, timeout=60)
        got = [int(x) for x in res.stdout.split()]
        want = ref.encode(text, bos=True, exact_slow=True)
        check(res.returncode == 0 and got == want,
              f"encode {text!r}: {len(got)} ids as llama2.c's BPE"
              + ("" if got == want else f" (got {got[:12]}, want {want[:12]})"))
        res = subprocess.run([tool, TOK, "decode"] + [str(i) for i in want],
                             capture_output=True, timeout=60)
        check(res.returncode == 0 and res.stdout == text.encode("utf-8")
              and res.stdout.decode("utf-8") == ref.decode(want),
              f"decode gives {text!r} back, as the reference decodes it")
    res = subprocess.run([tool, TOK, "decode", "1", "512"], capture_output=True, timeout=60)
    check(res.returncode == 2 and b"512" in res.stderr, "decoding id 512 is an error naming it")


def main():
    what = sys.argv[1]
    if what in ("greedy", "greedy-jit"):
        test_greedy(what.endswith("jit"))
    elif what == "sampling":
        test_sampling()
    elif what in ("eval", "eval-jit"):
        test_eval(what.endswith("jit"))
    elif what == "bad":
        test_bad()
    elif what == "tokenizer":
        test_tokenizer(sys.argv[2])
    else:
        sys.exit(f"unknown test {what}")
    print(f"{checks - len(failures)}/{checks} checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
