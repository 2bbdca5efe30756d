#!/usr/bin/env bash
# The accuracy of the artifact that was timed, on this machine (results/digits_example.md):
# MobileNetV3-Small at width 0.5 trained on scikit-learn's digits (32x32), evaluated eager
# and as the three artifacts profile times (.pte fp32, .pte int8 calibrated on the
# training digits, .onnx fp32), each artifact then profiled on `host` (one pinned core).
# Usage: results/digits_example.sh [WORKDIR]   (about five minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
MB=.venv/bin/mobilebench
WORK=${1:-$(mktemp -d /tmp/digits_example.XXXXXX)}
export MOBILEBENCH_DB=$WORK/results.sqlite  # every command below stores there
CKPT=$WORK/mnv3_small_digits.pt
OUT=results/digits_example.md

if [ ! -f "$CKPT" ]; then
  $MB train --arch mobilenet_v3_small --arch-option width_mult=0.5 --recipe digits \
    --dataset digits --loss ce --seed 0 --out "$WORK/run" --no-progress
  cp "$WORK/run/best.pt" "$CKPT"
fi
VARIANTS=("eager fp32" "executorch fp32" "executorch int8" "onnx fp32")
for variant in "${VARIANTS[@]}"; do
  set -- $variant
  $MB eval "$CKPT" --runtime "$1" --dtype "$2" --no-progress --format json > "$WORK/eval_$1_$2.json"
  [ "$1" = eager ] || $MB profile "$CKPT" --device host --runtime "$1" --dtype "$2" --warmup 10 --iterations 200 \
    --format json > "$WORK/profile_$1_$2.json"
done
.venv/bin/python - "$WORK" "$OUT" <<'PY'
import json, sys, datetime
from pathlib import Path
work, out = Path(sys.argv[1]), Path(sys.argv[2])
lines = [
    f"# Digits: the accuracy and the latency of each artifact ({datetime.date.today()})",
    "",
    "Made by `results/digits_example.sh`: MobileNetV3-Small (width 0.5) trained here on",
    "scikit-learn's digits (32x32 inputs, 10 classes, 360 held-out images). Top-1/top-5 are",
    "measured on the artifact itself in its runtime (ExecuTorch's Python runtime, onnxruntime);",
    "the int8 program is calibrated on the training digits. Latency: `profile --device host`,",
    "this computer, one pinned core, 200 iterations, median with its 95 % interval.",
    "",
    "| runs as | top-1 (%) | top-5 (%) | artifact sha256 | host median ms (95 % CI) | run |",
    "| --- | --- | --- | --- | --- | --- |",
]
for runtime, dtype in (("eager", "fp32"), ("executorch", "fp32"), ("executorch", "int8"), ("onnx", "fp32")):
    (acc,) = json.loads((work / f"eval_{runtime}_{dtype}.json").read_text())
    label = {"eager": "eager PyTorch", "executorch": ".pte", "onnx": ".onnx"}[runtime] + f" {dtype}"
    latency, run, sha = "", "", (acc["artifact_sha256"] or "")[:12]
    if runtime != "eager":
        (prof,) = json.loads((work / f"profile_{runtime}_{dtype}.json").read_text())
        latency = f"{prof['median_ms']:.3f} ({prof['ci_low_ms']:.3f}-{prof['ci_high_ms']:.3f})"
        run = str(prof["id"])
        assert prof["artifact_sha256"][:12] == sha, "profile timed another artifact than eval measured"
    lines.append(f"| {label} | {acc['top1']:.2f} | {acc['top5']:.2f} | {sha} | {latency} | {run} |")
out.write_text("\n".join(lines) + "\n")
print(f"wrote {out}")
PY
