#!/usr/bin/env bash
# fuzz.sh: builds the libFuzzer targets (fuzz/, clang-19, ASan+UBSan) and
# runs each for a fixed time on a corpus seeded from the test models.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]
#     SECONDS_PER_TARGET  default 60
#     TARGET              load npy pb npz pipeline quantize compile ir_text api
#                         tokenizer mnb
#                         (default: all)
#   env: OCTET_FUZZ_BUILD  build folder (default build-fuzz)
#        OCTET_SHARED      shared folder (default ../shared)
#
# Corpora persist in $BUILD/corpus/TARGET between runs; crash, leak and
# timeout reproducers land in $BUILD/artifacts/TARGET/.  Prints the
# executions and corpus size of each target (the figures in
# docs/reliability.md) and exits 1 if any target found a problem.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
shift || true
TARGETS=${*:-load npy pb npz pipeline quantize compile ir_text api tokenizer mnb stats}
BUILD=${OCTET_FUZZ_BUILD:-build-fuzz}
SHARED=${OCTET_SHARED:-../shared}
NODE_TESTS=/usr/share/libonnx-testdata/data/node
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  CC=clang-19 CXX=clang++-19 cmake -S . -B "$BUILD" -DOCTET_FUZZ=ON \
    -DOCTET_SANITIZE=ON -DOCTET_NATIVE=OFF >/dev/null
fi
for t in $TARGETS; do
  cmake --build "$BUILD" -j2 --target "fuzz_$t" >/dev/null
done
case " $TARGETS " in *" compile "*) cmake --build "$BUILD" -j2 --target octet >/dev/null ;; esac

# ---- seeds -------------------------------------------------------------------
SEEDS=$BUILD/seeds
if [ ! -d "$SEEDS/model" ]; then
  mkdir -p "$SEEDS"/{model,small_model,pb,npy,npz}
  i=0
  for f in "$SHARED"/models/*/model.onnx; do
    [ "$(stat -c %s "$f")" -le 262144 ] && cp "$f" "$SEEDS/model/shared_$((i++)).onnx"
  done
  for d in "$NODE_TESTS"/*/; do
    n=$(basename "$d")
    [ -f "$d/model.onnx" ] || continue
    cp "$d/model.onnx" "$SEEDS/model/$n.onnx"
    cp "$d/model.onnx" "$SEEDS/small_model/$n.onnx"
    for p in "$d"/test_data_set_0/*.pb; do
      [ -f "$p" ] && [ "$(stat -c %s "$p")" -le 65536 ] && \
        cp "$p" "$SEEDS/pb/${n}_$(basename "$p")"
    done
  done
  for p in "$SHARED"/models/mnist-8/test_data_set_0/*.pb; do
    cp "$p" "$SEEDS/pb/mnist_$(basename "$p")"
  done
  "$PY" - "$SEEDS" <<'PYEOF'
import io, sys, zipfile
import numpy as np
out = sys.argv[1]
rng = np.random.default_rng(0)
arrays = {
    "f32": rng.standard_normal((2, 3, 4)).astype(np.float32),
    "f64_fortran": np.asfortranarray(rng.standard_normal((3, 5))),
    "u8": np.arange(24, dtype=np.uint8).reshape(2, 12),
    "i8": np.arange(-8, 8, dtype=np.int8),
    "i64": np.arange(6, dtype=np.int64).reshape(3, 2),
    "f16": np.ones((4,), np.float16),
    "bool": np.array([True, False, True]),
    "scalar": np.array(3.5, np.float32),
    "empty": np.zeros((0, 4), np.float32),
    "big_endian": np.arange(5, dtype=">i4"),
}
for name, a in arrays.items():
    np.save(f"{out}/npy/{name}.npy", a)
with open(f"{out}/npy/v2_header.npy", "wb") as f:
    np.lib.format.write_array(f, arrays["f32"], version=(2, 0))
np.savez(f"{out}/npz/stored.npz", x=arrays["f32"], y=arrays["u8"])
np.savez_compressed(f"{out}/npz/deflated.npz", x=arrays["f32"], y=arrays["i64"])
np.savez_compressed(f"{out}/npz/one.npz", input=rng.standard_normal((1, 1, 8, 8)).astype(np.float32))
PYEOF
fi

# MatMulNBits (com.microsoft): one-node models, for the packed-weight reader
# (src/ops/matmulnbits.c) in the interpreter (pipeline) and the compiler's
# unpacking (compile): no, packed and float zero points, a short block,
# g_idx and a bias
if [ ! -f "$SEEDS/model/matmulnbits_packed_zp.onnx" ]; then
  "$PY" - "$SEEDS" <<'PYEOF'
import sys
import numpy as np
import onnx
from onnx import TensorProto as T, helper, numpy_helper
out = sys.argv[1]
rng = np.random.default_rng(1)
for name, K, N, bits, bs, zp, extra in [("no_zp", 40, 3, 4, 16, None, False),
                                        ("packed_zp", 20, 2, 4, 16, "u8", True),
                                        ("float_zp", 32, 2, 2, 16, "f32", False),
                                        ("bits8", 16, 2, 8, 16, "u8", True)]:
    nb = -(-K // bs)
    B = rng.integers(0, 256, (N, nb, bs * bits // 8), dtype=np.uint8)
    inits = [numpy_helper.from_array(B, "B"),
             numpy_helper.from_array(rng.random(N * nb).astype(np.float32), "s")]
    ins = ["a", "B", "s"]
    if zp == "u8":
        inits.append(numpy_helper.from_array(rng.integers(0, 256, N * ((nb * bits + 7) // 8), dtype=np.uint8), "z"))
        ins.append("z")
    elif zp == "f32":
        inits.append(numpy_helper.from_array(rng.random(N * nb).astype(np.float32), "z"))
        ins.append("z")
    if extra:
        ins += [""] * (4 - len(ins)) + ["g", "bias"]
        inits += [numpy_helper.from_array((np.arange(K) // bs).astype(np.int32), "g"),
                  numpy_helper.from_array(np.ones(N, np.float32), "bias")]
    node = helper.make_node("MatMulNBits", ins, ["y"], domain="com.microsoft", name="mnb",
                            K=K, N=N, bits=bits, block_size=bs)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("a", T.FLOAT, [2, K])],
                          [helper.make_tensor_value_info("y", T.FLOAT, [2, N])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21),
                                            helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 10
    for d in ("model", "small_model"):
        onnx.save(m, f"{out}/{d}/matmulnbits_{name}.onnx")
PYEOF
fi

# compile: a few tiny quantized models (QDQ graphs for qdq_fuse and the
# integer lowerings), made once by this build's `octet quantize` from
# mnist-8 (two calibration samples) and iris-mlp (batch bound to 1).
if [[ " $TARGETS " == *" compile "* && ! -d "$SEEDS/qmodel" ]]; then
  mkdir -p "$SEEDS/qmodel.tmp"
  q() { ASAN_OPTIONS=detect_leaks=0 "$BUILD/octet" quantize "$@" >/dev/null 2>&1 || true; }
  "$PY" -c "import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(0)
    .standard_normal((4, 4)).astype(np.float32))" "$SEEDS/qmodel.tmp/iris_calib.npy"
  M=$SHARED/models/mnist-8
  I=$SHARED/models/iris-mlp/model.onnx
  IC=$SEEDS/qmodel.tmp/iris_calib.npy
  q "$M/model.onnx" --calib "$M" --calib-samples 2 -o "$SEEDS/qmodel.tmp/mnist_u8.onnx"
  q "$M/model.onnx" --calib "$M" --calib-samples 2 --activations=s8 --weights=per-tensor \
    -o "$SEEDS/qmodel.tmp/mnist_s8_tensor.onnx"
  q "$M/model.onnx" --calib "$M" --calib-samples 2 --precision=fp8 \
    -o "$SEEDS/qmodel.tmp/mnist_fp8.onnx"
  q "$I" --calib "$IC" --input-shape input=1x4 -o "$SEEDS/qmodel.tmp/iris_u8.onnx"
  q "$I" --calib "$IC" --input-shape input=1x4 --activations=s8 --weights=per-block \
    --block-size=8 -o "$SEEDS/qmodel.tmp/iris_s8_block.onnx"
  q "$I" --calib "$IC" --input-shape input=1x4 --exclude-op-types=Gemm \
    -o "$SEEDS/qmodel.tmp/iris_f32.onnx"
  rm -f "$IC"
  mv "$SEEDS/qmodel.tmp" "$SEEDS/qmodel"
fi

# ir_text: the golden per-pass cases, inputs and expected outputs (text IR)
if [[ " $TARGETS " == *" ir_text "* && ! -d "$SEEDS/ir_text" ]]; then
  mkdir -p "$SEEDS/ir_text"
  for f in tests/golden/*/*.txt; do
    cp "$f" "$SEEDS/ir_text/$(basename "$(dirname "$f")")_$(basename "$f")"
  done
fi

# api: model images (ONNX and text IR, behind an even first byte) and tensor
# views (behind an odd one)
if [[ " $TARGETS " == *" api "* && ! -d "$SEEDS/api" ]]; then
  mkdir -p "$SEEDS/api"
  for f in "$SEEDS"/small_model/*.onnx tests/golden/*/*.in.txt; do
    [ -f "$f" ] || continue
    { printf '\x00'; cat "$f"; } > "$SEEDS/api/$(basename "$(dirname "$f")")_$(basename "$f")"
  done
  printf '\x01\x01\x01\x04\x00\x00\x00\x10\x00\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40\x00\x00\x80\x40' \
    > "$SEEDS/api/view_f32_4"
fi

# tokenizer: the reproducers fuzzing found, and stories260k's tok512.bin
if [[ " $TARGETS " == *" tokenizer "* && ! -d "$SEEDS/tokenizer" ]]; then
  mkdir -p "$SEEDS/tokenizer"
  cp tests/lm/fuzz_regressions/* "$SEEDS/tokenizer/"
  if [ -f "$SHARED/models/stories260k/tok512.bin" ]; then
    cp "$SHARED/models/stories260k/tok512.bin" "$SEEDS/tokenizer/"
  fi
fi

# stats: a histogram file and a GPTQ Hessian file of small models
if [[ " $TARGETS " == *" stats "* && ! -d "$SEEDS/stats" ]]; then
  mkdir -p "$SEEDS/stats"
  cp tests/quantize/fuzz_seeds/stats_*.json "$SEEDS/stats/" 2>/dev/null || true
fi

# the seed folders of a target (the first one is read by libFuzzer after
# the corpus; none of them is written)
seeds_of() {
  case $1 in
    load) echo "$SEEDS/model" ;;
    pipeline|quantize) echo "$SEEDS/small_model" ;;
    compile) echo "$SEEDS/small_model $SEEDS/qmodel" ;;
    *) echo "$SEEDS/$1" ;;
  esac
}
maxlen_of() {
  case $1 in
    load) echo 262144 ;;
    pipeline|quantize|compile) echo 65536 ;;
    *) echo 65536 ;;
  esac
}

# ---- runs ----------------------------------------------------------------------
status=0
printf '%-10s %12s %10s %8s  %s\n' target executions exec/s corpus result
for t in $TARGETS; do
  corpus=$BUILD/corpus/$t
  art=$BUILD/artifacts/$t
  log=$BUILD/fuzz-$t.log
  mkdir -p "$corpus" "$art"
  read -ra seed_dirs <<<"$(seeds_of "$t")"
  set +e
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$BUILD/fuzz/fuzz_$t" "$corpus" "${seed_dirs[@]}" \
      -max_total_time="$SECS" -max_len="$(maxlen_of "$t")" -timeout=20 \
      -rss_limit_mb=2048 -artifact_prefix="$art/" -print_final_stats=1 \
      >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  n=$(find "$corpus" -type f | wc -l)
  result=ok
  if [ $rc -ne 0 ]; then result="FAILED (rc $rc, see $log and $art)"; status=1; fi
  printf '%-10s %12s %10s %8s  %s\n' "$t" "$execs" "$speed" "$n" "$result"
done
exit $status
