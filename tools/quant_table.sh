#!/usr/bin/env bash
# Size and perplexity of each quantization type on the real models, by the path the
# issue asks for: real GGUF -> F32 safetensors directory -> each type as GGUF.
# Prints a markdown table. Q8_0 and Q4_K_M are scored by `hearth compare` against the
# F32 model (which also gives the F32 perplexity and top-1 agreement); the other types
# by `hearth perplexity`. All on the first CHARS bytes of the text, chunks of 512.
# Usage: tools/quant_table.sh [WORKDIR]   (env: HEARTH, CHARS, TEXT_SRC, TYPES, MODELS)
set -euo pipefail
HEARTH=${HEARTH:-hearth}
WORK=${1:-/tmp/hearth-quant-table}
CHARS=${CHARS:-5000}
TEXT_SRC=${TEXT_SRC:-$(dirname "$0")/../../shared/models/gpl3.txt}
TYPES=${TYPES:-"Q6_K Q5_K Q5_1 Q5_0 Q4_K Q4_1 Q4_0"}
MODELS=${MODELS:-"smollm2-135m gemma3-270m"}
mkdir -p "$WORK"
TEXT="$WORK/text.txt"
head -c "$CHARS" "$TEXT_SRC" > "$TEXT"
mb() { python3 -c "print('%.1f' % ($1 / 1e6))"; }
echo "| model | type | size (MB) | vs F32 | perplexity | delta | top-1 agreement |"
echo "|---|---|---:|---:|---:|---:|---:|"
for m in $MODELS; do
  d="$WORK/$m-f32"
  [ -d "$d" ] || "$HEARTH" convert "$m" "$d" --dtype F32 >/dev/null
  f32="$WORK/$m-F32.gguf"
  [ -f "$f32" ] || "$HEARTH" convert "$d" "$f32" >/dev/null
  fb=$(stat -c %s "$f32")
  ref=""
  for t in Q8_0 Q4_K_M $TYPES; do
    out="$WORK/$m-$t.gguf"
    [ -f "$out" ] || "$HEARTH" quantize "$d" "$out" --type "$t" >/dev/null
    b=$(stat -c %s "$out")
    if [ "$t" = Q8_0 ] || [ "$t" = Q4_K_M ]; then
      read -r r p top1 n <<<"$("$HEARTH" compare "$f32" "$out" --text "$TEXT" --json 2>/dev/null \
        | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.4f %.4f %.1f%% %d" % (r["reference"]["ppl"], r["candidate"]["ppl"], r["top1_agreement"]*100, r["scored_tokens"]))')"
      if [ -z "$ref" ]; then
        ref=$r
        echo "| $m | F32 | $(mb "$fb") | 1.00x | $ref | | |"
      fi
    else
      top1=""
      p=$("$HEARTH" perplexity -m "$out" -f "$TEXT" --ctx 512 --json 2>/dev/null \
        | python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["ppl"])')
    fi
    read -r size ratio delta <<<"$(python3 -c "print('%.1f %.2fx %+.2f%%' % ($b / 1e6, $fb / $b, ($p - $ref) / $ref * 100))")"
    echo "| $m | $t | $size | $ratio | $p | $delta | $top1 |"
  done
  echo "($m: $n tokens scored in chunks of 512 from the first $CHARS bytes of the text)" >&2
done
