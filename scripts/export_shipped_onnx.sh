#!/usr/bin/env bash
# Re-make the shipped ONNX files of tsjnet-edge from the shipped checkpoint (run after changing
# tsjnet_sdk/weights/tsjnet-edge.safetensors or the exporter; tests/test_default_model.py checks that the ONNX
# metadata names the checkpoint's SHA-256). Exports into a temporary folder, then moves the files in.
set -euo pipefail
cd "$(dirname "$0")/.."
TSJNET=${TSJNET:-.venv/bin/tsjnet}
weights=$PWD/tsjnet_sdk/weights
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && "$OLDPWD/$TSJNET" export "$weights/tsjnet-edge.safetensors" \
  && "$OLDPWD/$TSJNET" export "$weights/tsjnet-edge.safetensors" --fp16)
mv "$tmp"/tsjnet-edge.onnx "$tmp"/tsjnet-edge.parity.json "$tmp"/tsjnet-edge_fp16.onnx "$tmp"/tsjnet-edge_fp16.parity.json "$weights/"
ls -l "$weights"
