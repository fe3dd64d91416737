#!/usr/bin/env bash
# Makes the Python venv of the sharing tests (default build/pyenv): tensorboard, keras + jax,
# onnx, onnxruntime from PyPI (scripts/requirements-test.txt). Idempotent, and never fails its
# caller: without PyPI the tests that need the venv skip, saying why.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-build/pyenv}
REQ=scripts/requirements-test.txt
STAMP=$VENV/.dptrain-requirements  # the requirements it was last completed with
if [ -x "$VENV/bin/python" ] && cmp -s "$REQ" "$STAMP"; then
  echo "setup-pyenv: $VENV is up to date"
  exit 0
fi
# Debian's Python (python3-venv, scripts/install-deps.sh), not whatever python3 PATH holds.
if [ ! -x "$VENV/bin/python" ] && ! /usr/bin/python3 -m venv "$VENV"; then
  echo "setup-pyenv: warning: cannot create $VENV (apt-get install python3-venv);" \
       "the tests that need tensorboard, keras or onnxruntime will skip"
  rm -rf "$VENV"
  exit 0
fi
# Short timeouts: an unreachable PyPI should cost seconds, not pip's default retries.
if "$VENV/bin/pip" install -q --disable-pip-version-check --timeout 30 --retries 2 -r "$REQ"; then
  cp "$REQ" "$STAMP"
  echo "setup-pyenv: $VENV ready ($(du -sh "$VENV" | cut -f1))"
else
  echo "setup-pyenv: warning: pip install -r $REQ failed (is PyPI reachable?);" \
       "the tests that need tensorboard, keras or onnxruntime will skip"
fi
exit 0
