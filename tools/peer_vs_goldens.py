#!/usr/bin/env python3
"""Does llama.cpp itself reproduce the goldens in ../shared/golden? Both halves of them.

usage: LLAMA_CPP_LIB_PATH=DIR $PEER_PYTHON tools/peer_vs_goldens.py MODEL_NAME [--no-extra]

MODEL_NAME is gemma3-270m or smollm2-135m (the model must be in hearth's cache). Runs
llama-cpp-python 0.3.36 (n_ctx 512, 2 threads, no flash attention, its defaults) and prints
1. teacher-forced: |log-prob of the true next token - the golden's| over every position of
   topk.json (the prompt plus its continuation evaluated as one batch), median and max;
2. greedy: how many of greedy.json's 8 prompts give the golden first 16 ids, token by token
   (`Llama.generate`, argmax), and where each diverges.
--no-extra turns off the extra buffer types (weight repacking), which ggml uses by default.

The goldens say "native CPU build" on a machine with AVX2 and FMA and without AVX-512. To
run that build on a machine with AVX-512, build the peer's libraries without it and point
LLAMA_CPP_LIB_PATH at them (the libraries only, so any llama-cpp-python 0.3.36 venv works):

    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
      -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF \
      -DGGML_AMX_INT8=OFF" pip install --no-binary llama-cpp-python llama-cpp-python==0.3.36

Measured 2026-11-29 with that AVX2 build: teacher-forced log-probs equal the goldens on
every position of both models (max difference 0.00000), with repacking on; with
--no-extra Gemma's differ (median 0.0197: its Q4_K weights run through the repacked
kernels by default). Greedy, the same build: Gemma 3/8, SmolLM2 6/8, whatever the thread
count (1, 2), context (512, 2048, 32768), logits_all, or whether the prompt is evaluated
at once, minus its last token, or token by token. The golden greedy ids part from the
golden teacher-forced top-1 only at near-ties (margins 0.003-0.06 nats), as single-token
decode steps round differently from a batch; but llama.cpp's own decode steps here part
from them earlier. So the greedy goldens are not reproducible by the reference itself.
"""
import json
import os
import sys
from pathlib import Path

import numpy as np

import llama_cpp
import llama_cpp.llama as L
from llama_cpp import Llama

FILES = {"gemma3-270m": "gemma-3-270m-q4_k_m.gguf", "smollm2-135m": "SmolLM2-135M-Instruct.Q4_1.gguf"}
name = sys.argv[1]
cache = Path(os.environ.get("HEARTH_CACHE", Path.home() / ".cache/hearth"))
golden_dir = Path(__file__).resolve().parents[2] / "shared/golden" / name

if "--no-extra" in sys.argv:
    _defaults = llama_cpp.llama_model_default_params

    def _no_extra():
        p = _defaults()
        p.use_extra_bufts = False
        return p

    L.llama_cpp.llama_model_default_params = _no_extra

model = str(cache / "models" / FILES[name])
topk = json.loads((golden_dir / "topk.json").read_text())["cases"]
llm = Llama(model_path=model, n_ctx=512, n_threads=2, verbose=False, logits_all=True)
diffs = []
for case in topk:
    llm.reset()
    llm.eval(case["ids"])
    logits = np.array(llm.scores[: len(case["ids"])], dtype=np.float64)
    logits -= logits.max(1, keepdims=True)
    logprobs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    diffs += [abs(logprobs[j, p["next_id"]] - p["next_logprob"]) for j, p in enumerate(case["positions"])]
diffs = np.array(diffs)
print(f"{name}: teacher-forced |dlogprob| median {np.median(diffs):.5f} max {diffs.max():.5f} "
      f"over {len(diffs)} positions")

greedy = json.loads((golden_dir / "greedy.json").read_text())["cases"]
llm = Llama(model_path=model, n_ctx=512, n_threads=2, verbose=False)
same, first_diff = 0, []
for case in greedy:
    peer = []
    for t in llm.generate(case["prompt_ids"], top_k=1, temp=0.0, reset=True):
        peer.append(t)
        if len(peer) == 16:
            break
    want = case["greedy_ids"][:16]
    same += peer == want
    first_diff.append(next((i for i, (a, b) in enumerate(zip(peer, want)) if a != b), None))
print(f"{name}: greedy first-16 identical {same}/{len(greedy)}; first differing step {first_diff}")
