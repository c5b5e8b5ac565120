#!/usr/bin/env bash
# gen_pictures.sh: makes the two pictures of the README's "Inspecting a
# rewritten graph" section, from the shared mnist-8 model and its MNIST
# calibration data:
#   docs/img/mnist-8-int8-graph.svg   `octet inspect --format=dot` of the
#                                     INT8 QDQ model, rendered by `dot -Tsvg`
#   docs/img/mnist-8-int8-report.svg  `octet quantize --svg`: per-tensor
#                                     SQNR and precision of that model
#                                     (activations, weights and biases; the
#                                     same picture as `octet report --svg`,
#                                     which sees only the Q/DQ pairs)
# Usage (top folder, after the build): scripts/gen_pictures.sh [OUT_DIR]
# OUT_DIR defaults to docs/img.  Environment: OCTET (default build/octet),
# OCTET_SHARED (default ../shared), PICTURES_WORK (keep the intermediate
# files there instead of a temporary folder; tests/pictures uses it).
set -euo pipefail
octet=${OCTET:-build/octet}
shared=${OCTET_SHARED:-../shared}
out=${1:-docs/img}
model=$shared/models/mnist-8/model.onnx
data=$shared/data/mnist/calib_1000_f32.npy
for f in "$model" "$data"; do
  [ -e "$f" ] || { echo "gen_pictures.sh: $f is missing (needs ../shared)" >&2; exit 2; }
done
if [ -n "${PICTURES_WORK:-}" ]; then
  work=$PICTURES_WORK
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$out" "$work"
# INT8 (u8 activations, s8 per-channel weights), 200 calibration samples
"$octet" quantize "$model" --calib "$data" --calib-samples 200 --progress=none \
  -o "$work/mnist-8.int8.onnx" --report "$work/mnist-8.int8.report.json" \
  --svg "$out/mnist-8-int8-report.svg" > /dev/null
"$octet" inspect "$work/mnist-8.int8.onnx" --format=dot -o "$work/mnist-8.int8.dot"
dot -Tsvg "$work/mnist-8.int8.dot" -o "$out/mnist-8-int8-graph.svg"
echo "wrote $out/mnist-8-int8-graph.svg and $out/mnist-8-int8-report.svg"
