"""The in-place key/value cache in compiled code (issue 14, item 2) on
stories260k, against oracles that share no code with Octet (the helpers and
oracles are lm_tests.py's):

  greedy   `octet generate --jit --kv-cache=inplace` from BOS: 200 greedy ids
           equal llama2.c's numpy reference (tools/llama2c_ref.py) and the
           text printed is the start of MODEL_CARD.md's sample; a text prompt
           through the prefill graph (its present slots copied into the
           compiled cache) continues like the sample
  refused  graphs without the past -> Concat -> present pattern, asked for the
           in-place cache: `octet generate` and `octet compile` exit 3 with a
           diagnostic naming the tensor and saying why; --kv-cache=inplace
           without --jit is a usage error (exit 1)
"""
import os
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
    elif what == "refused":
        test_refused()
    else:
        sys.exit(f"unknown test {what}")
    print(f"{lt.checks - len(lt.failures)}/{lt.checks} checks passed")
    sys.exit(1 if lt.failures else 0)


if __name__ == "__main__":
    main()
