#!/usr/bin/env bash
# Size and perplexity of every quantization type on the real models, by the path the
# issue asks for: real GGUF -> F32 safetensors directory -> each type as GGUF.
# Prints a markdown table; top-1 agreement with F32 for Q8_0 and Q4_K_M.
# Usage: tools/quant_table.sh [WORKDIR]   (HEARTH=path/to/hearth, CHARS=text prefix)
set -euo pipefail
HEARTH=${HEARTH:-hearth}
WORK=${1:-/tmp/hearth-quant-table}
CHARS=${CHARS:-9000}
TEXT_SRC=${TEXT_SRC:-$(dirname "$0")/../../shared/models/gpl3.txt}
TYPES=${TYPES:-"F16 Q8_0 Q6_K Q5_K_M Q5_0 Q4_K_M Q4_K Q4_1 Q4_0"}
mkdir -p "$WORK"
TEXT="$WORK/text.txt"
head -c "$CHARS" "$TEXT_SRC" > "$TEXT"
ppl() { "$HEARTH" perplexity -m "$1" -f "$TEXT" --ctx 512 --json 2>/dev/null \
  | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.4f %d" % (r["ppl"], r["scored_tokens"]))'; }
for m in smollm2-135m gemma3-270m; do
  d="$WORK/$m-f32"
  [ -d "$d" ] || "$HEARTH" convert "$m" "$d" --dtype F32 >/dev/null
  [ -f "$WORK/$m-F32.gguf" ] || "$HEARTH" convert "$d" "$WORK/$m-F32.gguf" >/dev/null
  read -r ref n <<<"$(ppl "$WORK/$m-F32.gguf")"
  f32_bytes=$(stat -c %s "$WORK/$m-F32.gguf")
  echo "| $m | F32 | $(python3 -c "print(f'{$f32_bytes/1e6:.1f}')") | 1.00x | $ref | +0.00% | |"
  for t in $TYPES; do
    out="$WORK/$m-$t.gguf"
    [ -f "$out" ] || "$HEARTH" quantize "$d" "$out" --type "$t" >/dev/null
    read -r p _ <<<"$(ppl "$out")"
    b=$(stat -c %s "$out")
    top1=""
    if [ "$t" = Q8_0 ] || [ "$t" = Q4_K_M ]; then
      top1=$("$HEARTH" compare "$WORK/$m-F32.gguf" "$out" --text "$TEXT" --json 2>/dev/null \
        | python3 -c 'import json,sys; print("%.1f%%" % (json.load(sys.stdin)["top1_agreement"] * 100))')
    fi
    python3 -c "print(f'| $m | $t | {$b/1e6:.1f} | {$f32_bytes/$b:.2f}x | $p | {($p-$ref)/$ref*100:+.2f}% | $top1 |')"
  done
  echo "($m: $n tokens scored, ctx 512, first $CHARS bytes of gpl3.txt)" >&2
done
