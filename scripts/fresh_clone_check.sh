#!/usr/bin/env bash
# fresh_clone_check.sh: the README's quick start in a fresh clone with
# nothing beside it.  Clones this repository's HEAD into an empty temporary
# folder (no ../shared there), runs the README's two commands,
#   bash scripts/quickstart.sh     (setup, build, the main job)
#   bash scripts/test.sh           (the suite; tests needing ../shared skip)
# and fails if either fails or if the main job printed no accuracy table.
# Committed work only: uncommitted changes are not in the clone.
#
#   scripts/fresh_clone_check.sh [--quickstart-only] [--release-only]
#   --release-only: test.sh with OCTET_TEST_RELEASE_ONLY=1 (the release
#   suite only; .ci/run passes it, having run the sanitized suites of the
#   same commit in its own checkout just before)
#   OCTET_FRESH_KEEP=1 ...   keep the temporary folder (printed) afterwards
# OCTET_CMAKE_ARGS and OCTET_SKIP_APT pass through to the clone's setup.
set -euo pipefail
cd "$(dirname "$0")/.."
quick_only=
release_only=
for arg in "$@"; do
  case "$arg" in
    --quickstart-only) quick_only=1 ;;
    --release-only) release_only=1 ;;
    *) echo "usage: scripts/fresh_clone_check.sh [--quickstart-only] [--release-only]" >&2; exit 1 ;;
  esac
done

tmp=$(mktemp -d)
cleanup() { if [ -z "${OCTET_FRESH_KEEP:-}" ]; then rm -rf "$tmp"; else echo "fresh clone kept in $tmp"; fi; }
trap cleanup EXIT

git clone --quiet "$PWD" "$tmp/octet"
cd "$tmp/octet"
if [ -e ../shared ]; then
  echo "fresh_clone_check: $tmp/shared exists; the check needs nothing beside the clone" >&2
  exit 1
fi
# the clone must not find the shared folder through the environment either
unset OCTET_SHARED

echo "== fresh clone $(git rev-parse --short HEAD) in $tmp/octet: bash scripts/quickstart.sh"
start=$(date +%s)
bash scripts/quickstart.sh 2>&1 | tee ../quickstart.log
end=$(date +%s)
echo "== quickstart took $((end - start)) s"
for want in "precision" "octet compiled" "ONNX Runtime" "FP32" "INT8" "FP8" "artifacts"; do
  if ! grep -q "$want" ../quickstart.log; then
    echo "fresh_clone_check: the main job's output has no '$want' (no accuracy table)" >&2
    exit 1
  fi
done
if ! grep -Eq '^FP32 +octet compiled +[0-9.]+%' ../quickstart.log; then
  echo "fresh_clone_check: the main job's table has no FP32 accuracy row" >&2
  exit 1
fi
[ -d out/demo/fashion-cnn ] || { echo "fresh_clone_check: out/demo/fashion-cnn missing" >&2; exit 1; }

if [ -z "$quick_only" ]; then
  echo "== bash scripts/test.sh"
  start=$(date +%s)
  if [ -n "$release_only" ]; then
    OCTET_TEST_RELEASE_ONLY=1 bash scripts/test.sh
  else
    bash scripts/test.sh
  fi
  echo "== test.sh took $(( $(date +%s) - start )) s"
fi
echo "fresh_clone_check: ok"
