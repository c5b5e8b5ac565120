"""The in-place key/value cache in compiled code (issue 14, item 2) on
stories260k, against oracles that share no code with Octet (the helpers and
oracles are lm_tests.py's):

  greedy   `octet generate --jit --kv-cache=inplace` from BOS: 200 greedy ids
           equal llama2.c's numpy reference (tools/llama2c_ref.py) and the
           text printed is the start of MODEL_CARD.md's sample; a text prompt
           through the prefill graph (its present slots copied into the
           compiled cache) continues like the sample; a copy of decode_p128
           with symbolic lengths (--cache-size 200) gives the reference ids
  header   `octet compile --kv-cache=inplace --emit=so,header` of decode_p128:
           a C program written to the generated header alone (kv_step_driver.c:
           cache buffers = present outputs, past inputs NULL, one slot moved
           per step) prints llama2.c's 120 greedy ids; `octet run` of the .so
           on random inputs gives ONNX Runtime's logits and present outputs
  library  `octet generate NAME.so` of decode_p256 compiled by `octet compile
           --emit=so --kv-cache=inplace`: from BOS, 200 greedy ids equal
           llama2.c's reference and the text is the start of MODEL_CARD.md's
           sample; the same with --weights=file (weights beside the library),
           and after the transformer pattern passes (the fused Attention's
           decode step reads the keys in place: 200 reference ids);
           a library compiled without the in-place cache, one of another
           model, a missing file and --prefill/--jit with a library are
           refused with a diagnostic (exit 3, 3, 2, 1)
  refused  graphs without the past -> Concat -> present pattern, asked for the
           in-place cache: `octet generate` and `octet compile` exit 3 with a
           diagnostic naming the tensor and saying why; --kv-cache=inplace
           without --jit is a usage error (exit 1)
"""
import os
import subprocess
import sys
import tempfile

import lm_tests as lt

DEC = os.path.join(lt.MD, "decode_p256.onnx")
DEC128 = os.path.join(lt.MD, "decode_p128.onnx")
INPLACE = ["--jit", "--kv-cache=inplace"]


def test_greedy():
    want = lt.reference_greedy(200)
    res = lt.octet("generate", DEC, "--tokenizer", lt.TOK, "-n", 200, *INPLACE)
    text = res.stdout.decode("utf-8")
    tokenizer = lt.llama2c_ref.Tokenizer(lt.TOK)
    lt.check(res.returncode == 0 and text.endswith("\n"),
             f"generate in place exits 0 ({res.stderr.decode()[-300:]})")
    lt.check(text[:-1] == tokenizer.decode([1] + want),
             "the 200 tokens printed decode llama2.c's reference greedy ids")
    sample = lt.model_card_sample()
    lt.check(len(text) > 400 and sample.startswith(text[:-1]),
             f"the text is the start of MODEL_CARD.md's sample ({len(text) - 1} characters)")
    stderr = res.stderr.decode()
    lt.check("decode: 199 tokens" in stderr and "tokens/s" in stderr,
             "speed of prefill and decode on stderr")
    res = lt.octet("generate", DEC, "--tokenizer", lt.TOK, "--prompt", "Once upon a time",
                   "--prefill", os.path.join(lt.MD, "prefill_s64.onnx"), "-n", 30, *INPLACE)
    text = res.stdout.decode("utf-8")
    lt.check(res.returncode == 0 and sample.startswith(text[:-1]) and len(text) > 100,
             "a text prompt through the prefill graph continues like the sample")
    # batch, past and total lengths symbolic, as Optimum exports them: the
    # slots come from --cache-size, then the graph compiles in place
    import onnx
    m = onnx.load(DEC128)
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
        res = lt.octet("generate", path, "--prompt-ids", "1", "-n", 150, "--cache-size", 200,
                       *INPLACE)
        lt.check(res.returncode == 0 and lt.ids_of(res) == want[:150],
                 "symbolic lengths, --cache-size 200, in place: 150 greedy ids as the reference")


def test_header():
    import numpy as np
    import onnxruntime as ort
    want = lt.reference_greedy(120)
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "kvdec")
        res = lt.octet("compile", DEC128, "--kv-cache=inplace", "--emit=so,header",
                       "--name", "kvdec", "-O1", "-o", base)
        lt.check(res.returncode == 0, f"compile in place exits 0 ({res.stderr.decode()[-300:]})")
        header = open(base + ".h").read()
        lt.check("#define kvdec_KV_NUM 10" in header and "#define kvdec_KV_PAST 128" in header
                 and "#define kvdec_KV_0_OUTPUT 1 /* present.0.key: [1,4,129,8] */" in header,
                 "the header lists the ten caches of [1,4,129,8] and P = 128")
        drv = os.path.join(tmp, "drv")
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kv_step_driver.c")
        cc = subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-O1", "-I", tmp, src,
                             base + ".so", "-Wl,-rpath," + tmp, "-o", drv],
                            capture_output=True, timeout=300)
        lt.check(cc.returncode == 0, f"the driver compiles against the header ({cc.stderr.decode()[-300:]})")
        run = subprocess.run([drv, "120"], capture_output=True, timeout=300)
        got = [int(x) for x in run.stdout.decode().split()]
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
        lt.check(run.returncode == 0 and got == want,
                 f"120 greedy ids of the header's step equal llama2.c's (first difference {first})")
        # one run of the library on random inputs, as a graph: the past is
        # copied into the present buffers, the outputs are ONNX Runtime's
        rng = np.random.default_rng(5)
        feeds = {"input_ids": np.array([[17]], np.int64), "position_ids": np.array([[40]], np.int64),
                 "attention_mask": (rng.random((1, 129)) < 0.5).astype(np.int64)}
        feeds["attention_mask"][0, -1] = 1
        for l in range(5):
            for kind in ("key", "value"):
                feeds[f"past_key_values.{l}.{kind}"] = rng.standard_normal((1, 4, 128, 8)).astype(np.float32)
        args, out_dir = [], os.path.join(tmp, "out")
        for name, value in feeds.items():
            path = os.path.join(tmp, name + ".npy")
            np.save(path, value)
            args += ["--input", f"{name}={path}"]
        res = lt.octet("run", base + ".so", *args, "--output-dir", out_dir)
        sess = ort.InferenceSession(DEC128, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        ref = dict(zip(names, sess.run(None, feeds)))
        worst = 0.0
        for name in names:
            path = os.path.join(out_dir, name + ".npy")
            got_t = np.load(path) if os.path.exists(path) else np.full_like(ref[name], np.nan)
            err = float(np.max(np.abs(got_t - ref[name])) / np.max(np.abs(ref[name])))
            worst = max(worst, err) if err == err else float("nan")
        lt.check(res.returncode == 0 and worst <= 1e-5,
                 f"octet run of the .so: logits and 10 present outputs within 1e-5 of ONNX "
                 f"Runtime's (worst {worst:.2g}; {res.stderr.decode()[-200:]})")


def test_library():
    want = lt.reference_greedy(200)
    sample = lt.model_card_sample()
    tokenizer = lt.llama2c_ref.Tokenizer(lt.TOK)
    with tempfile.TemporaryDirectory() as tmp:
        lib = os.path.join(tmp, "dec.so")
        res = lt.octet("compile", DEC, "--emit=so", "--kv-cache=inplace", "-o", lib[:-3])
        lt.check(res.returncode == 0, f"compile in place exits 0 ({res.stderr.decode()[-300:]})")
        res = lt.octet("generate", lib, "--tokenizer", lt.TOK, "-n", 200)
        text = res.stdout.decode("utf-8")
        lt.check(res.returncode == 0 and text.endswith("\n"),
                 f"generate of the library exits 0 ({res.stderr.decode()[-300:]})")
        lt.check(text[:-1] == tokenizer.decode([1] + want),
                 "the 200 tokens printed decode llama2.c's reference greedy ids")
        lt.check(len(text) > 400 and sample.startswith(text[:-1]),
                 f"the text is the start of MODEL_CARD.md's sample ({len(text) - 1} characters)")
        lt.check("decode: 199 tokens" in res.stderr.decode(), "speed of decode on stderr")
        # weights in a file beside the library, loaded as `octet run` loads them
        wlib = os.path.join(tmp, "wdec.so")
        res = lt.octet("compile", DEC, "--emit=so", "--kv-cache=inplace", "--weights=file",
                       "-o", wlib[:-3])
        res = lt.octet("generate", wlib, "--prompt-ids", "1", "-n", 120)
        lt.check(res.returncode == 0 and lt.ids_of(res) == want[:120],
                 f"--weights=file: 120 greedy ids as the reference ({res.stderr.decode()[-300:]})")
        # the fused graph: one Attention op per layer, a decode step's scores
        # read from the key rows in place
        fused = os.path.join(tmp, "fused.onnx")
        res = lt.octet("opt", "--passes=shape_infer,fuse_rmsnorm,fuse_rotary,fuse_attention",
                       DEC, "-o", fused)
        flib = os.path.join(tmp, "fused.so")
        if res.returncode == 0:
            res = lt.octet("compile", fused, "--emit=so", "--kv-cache=inplace", "-o",
                           flib[:-3], "--report", os.path.join(tmp, "fused.txt"))
        report = open(os.path.join(tmp, "fused.txt")).read() if res.returncode == 0 else ""
        res = lt.octet("generate", flib, "--prompt-ids", "1", "-n", 200)
        lt.check(res.returncode == 0 and report.count("\tAttention\t") == 5 and
                 lt.ids_of(res) == want,
                 f"fused library (5 Attention ops): 200 greedy ids as the reference "
                 f"({res.stderr.decode()[-300:]})")
        # refused: no in-place cache, not a language model, no file, flags
        plain = os.path.join(tmp, "plain.so")
        lt.octet("compile", DEC128, "--emit=so", "-O1", "-o", plain[:-3])
        res = lt.octet("generate", plain, "--prompt-ids", "1", "-n", 3)
        err = res.stderr.decode()
        lt.check(res.returncode == 3 and "plain.so" in err and "--kv-cache=inplace" in err,
                 f"a library without the in-place cache: exit 3 naming it ({err[-300:]})")
        fashion = os.path.join(os.path.dirname(__file__), "..", "..", "models", "fashion-cnn",
                               "fashion-cnn.onnx")
        cnn = os.path.join(tmp, "cnn.so")
        lt.octet("compile", fashion, "--emit=so", "-O1", "-o", cnn[:-3])
        res = lt.octet("generate", cnn, "--prompt-ids", "1", "-n", 3)
        err = res.stderr.decode()
        lt.check(res.returncode == 3 and "cnn.so" in err and "input_ids" in err,
                 f"a library of another model: exit 3 naming input_ids ({err[-300:]})")
        res = lt.octet("generate", os.path.join(tmp, "absent.so"), "--prompt-ids", "1", "-n", 3)
        err = res.stderr.decode()
        lt.check(res.returncode == 2 and "absent.so" in err,
                 f"a missing library: exit 2 naming it ({err[-300:]})")
        for flag in (["--jit"], ["--prefill", os.path.join(lt.MD, "prefill_s64.onnx")]):
            res = lt.octet("generate", lib, "--prompt-ids", "1", "-n", 3, *flag)
            lt.check(res.returncode == 1 and flag[0] in res.stderr.decode(),
                     f"{flag[0]} with a library is a usage error (exit {res.returncode})")


def test_refused():
    import onnx

    def expect(res, code, needles, what):
        err = res.stderr.decode()
        ok = res.returncode == code and all(n in err for n in needles)
        lt.check(ok, f"{what}: exit {res.returncode}, diagnostic names {needles}"
                 + ("" if ok else f" ({err.strip()[-500:]})"))

    with tempfile.TemporaryDirectory() as tmp:
        # the past also read by another node: a second graph output
        m = onnx.load(DEC128)
        m.graph.node.append(onnx.helper.make_node(
            "Identity", ["past_key_values.2.value"], ["past_copy"], name="copy"))
        m.graph.output.append(onnx.helper.make_tensor_value_info(
            "past_copy", onnx.TensorProto.FLOAT, [1, 4, 128, 8]))
        two = os.path.join(tmp, "two_readers.onnx")
        onnx.save(m, two)
        expect(lt.octet("generate", two, "--prompt-ids", "1", "-n", 3, *INPLACE), 3,
               ["past_key_values.2.value", "more than one node", "--kv-cache=inplace"],
               "a past input read by two nodes")
        # runs as written without the flag
        res = lt.octet("generate", two, "--prompt-ids", "1", "-n", 3, "--jit")
        lt.check(res.returncode == 0 and len(lt.ids_of(res)) == 3,
                 "the same graph runs as written without --kv-cache")
        # the new token first: Concat(new, past) (a valid graph, which the
        # interpreter runs; the past is not a prefix of the present output)
        m = onnx.load(DEC128)
        for n in m.graph.node:
            if n.op_type == "Concat" and n.output[0] == "present.1.key":
                n.input[0], n.input[1] = n.input[1], n.input[0]
        swapped = os.path.join(tmp, "swapped.onnx")
        onnx.save(m, swapped)
        expect(lt.octet("generate", swapped, "--prompt-ids", "1", "-n", 3, *INPLACE), 3,
               ["swapped.onnx", "past_key_values.1.key", "not as its first input", "key_Concat"],
               "a Concat with the past second")
        expect(lt.octet("compile", swapped, "--kv-cache=inplace", "-o",
                        os.path.join(tmp, "swapped")), 3,
               ["past_key_values.1.key", "not as its first input"],
               "octet compile of the same graph")
    fashion = os.path.join(os.path.dirname(__file__), "..", "..", "models", "fashion-cnn",
                           "fashion-cnn.onnx")
    with tempfile.TemporaryDirectory() as tmp:
        expect(lt.octet("compile", fashion, "--kv-cache=inplace", "-o",
                        os.path.join(tmp, "cnn")), 3,
               ["past_key_values", "--kv-cache=inplace"], "a model without a cache")
    expect(lt.octet("generate", DEC, "--prompt-ids", "1", "-n", 3, "--kv-cache=inplace"), 1,
           ["--kv-cache=inplace needs --jit"], "the in-place cache without --jit")


def main():
    what = sys.argv[1]
    if what == "greedy":
        test_greedy()
    elif what == "header":
        test_header()
    elif what == "library":
        test_library()
    elif what == "refused":
        test_refused()
    else:
        sys.exit(f"unknown test {what}")
    print(f"{lt.checks - len(lt.failures)}/{lt.checks} checks passed")
    sys.exit(1 if lt.failures else 0)


if __name__ == "__main__":
    main()
