#!/usr/bin/env bash
# test.sh: the whole test suite, run twice: on the release build (build/)
# and on an AddressSanitizer + UndefinedBehaviorSanitizer build
# (build-asan/), where any sanitizer report or leak fails the test that
# triggered it.  Run scripts/setup.sh first.
#
# The sanitized run leaves out the tests labelled `accuracy` (full-data-set
# accuracy and peak-memory figures: mnist-8 over 9000 images three times,
# squeezenet1.1, 340 calibration samples): they take most of an hour under
# ASan, and the code they run is the same the other quantize tests run
# sanitized (every shared model, every option and error path).  It also
# leaves out the node tests through the compiled path (label
# compiled_conformance) and the long runs of compiled language models (label
# compiled_models: 200-token generations, stories260k on the low-bit
# kernels, mnist-8's top-1 over its images, the per-target compiles):
# the generated code is not instrumented, and the compiler's own code is
# exercised sanitized by the codegen tests; and ONNX Runtime's QOperator
# models of the larger shared CNNs (label model_scale), whose ops and pass
# the sanitized run takes through mnist-8's and cifar10-cnn's; the round
# trip of every node-test model (label roundtrip); and the byte-identical
# repeated runs (label determinism: quantize and compile of mnist-8 and
# squeezenet1.1 twice each, whose code the other sanitized tests run once).
# All of them run in the release suite.
#
# OCTET_TEST_RELEASE_ONLY=1 stops after the release suite (CI's fresh-clone
# check uses it: the sanitized runs of the same commit have just run in CI's
# own clean checkout, with ../shared beside it, a superset of their tests).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

# The out-of-memory test (label sanitized_only: a full compile of squeezenet1.1
# per allocation) runs in the sanitized suite only, where LeakSanitizer also
# watches its failure paths; with OCTET_TEST_RELEASE_ONLY it runs here.
echo "== release build: ctest"
cmake --build build -j"$jobs"
release_skip=(-LE sanitized_only)
[ -n "${OCTET_TEST_RELEASE_ONLY:-}" ] && release_skip=()
ctest --test-dir build --output-on-failure -j"$jobs" "${release_skip[@]}"

if [ -n "${OCTET_TEST_RELEASE_ONLY:-}" ]; then
  echo "== OCTET_TEST_RELEASE_ONLY set: the sanitized runs are left out"
  exit 0
fi

echo "== ASan + UBSan build: ctest"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOCTET_SANITIZE=ON ${OCTET_CMAKE_ARGS:-} >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE 'accuracy|compiled_conformance|compiled_models|compiled_ops|model_scale|roundtrip|determinism' ${OCTET_ASAN_CTEST_ARGS:-}

echo "== ThreadSanitizer build: the API on two threads, one context each"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOCTET_TSAN=ON ${OCTET_CMAKE_ARGS:-} >/dev/null
cmake --build build-tsan -j"$jobs" --target api_threads
TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -R '^api_two_threads_one_context_each$'
