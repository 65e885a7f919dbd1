#!/usr/bin/env python3
"""Greedy continuations of the golden prompts: hearth vs a local llama.cpp vs the goldens.

usage: PEER_PYTHON=~/.cache/hearth/peer-venv/bin/python
       $PEER_PYTHON tools/greedy_vs_llama_cpp.py MODEL_NAME [HEARTH_BINARY]

MODEL_NAME is gemma3-270m or smollm2-135m (the model must be in hearth's cache). The local
llama.cpp is llama-cpp-python; it runs without extra buffer types (AMX / repacking), which
crash on some virtual machines. Prints, per model, how many of the 8 golden prompts give
the same first 16 greedy ids in each pair of {hearth, local llama.cpp, golden}.
FLASH_ATTN=1 runs the local llama.cpp with flash attention (f16 V accumulation).

Measured on the 2-core development VM (AVX-512 and AMX flags, AMX unusable): the local
llama.cpp itself matches the golden greedy ids for Gemma on 2/8 prompts (4/8 with
FLASH_ATTN=1) and for SmolLM2 on 6/8. An AVX2 build as the goldens' machine had (which
reproduces the teacher-forced goldens exactly) does no better: 3/8 and 6/8; see
tools/peer_vs_goldens.py.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import llama_cpp
import llama_cpp.llama as L
from llama_cpp import Llama

FILES = {"gemma3-270m": "gemma-3-270m-q4_k_m.gguf", "smollm2-135m": "SmolLM2-135M-Instruct.Q4_1.gguf"}
name = sys.argv[1]
hearth = sys.argv[2] if len(sys.argv) > 2 else "target/release/hearth"
cache = Path(os.environ.get("HEARTH_CACHE", Path.home() / ".cache/hearth"))
golden = json.loads((Path(__file__).resolve().parents[2] / "shared/golden" / name / "greedy.json").read_text())

_defaults = llama_cpp.llama_model_default_params


def _no_extra():
    p = _defaults()
    p.use_extra_bufts = False
    return p


L.llama_cpp.llama_model_default_params = _no_extra
llm = Llama(model_path=str(cache / "models" / FILES[name]), n_ctx=512, n_threads=2, verbose=False,
            flash_attn=os.environ.get("FLASH_ATTN") == "1")
counts = {"hearth=llama.cpp": 0, "hearth=golden": 0, "llama.cpp=golden": 0}
for case in golden["cases"]:
    peer = []
    for t in llm.generate(case["prompt_ids"], top_k=1, temp=0.0, reset=True):
        peer.append(t)
        if len(peer) == 16:
            break
    run = subprocess.run([hearth, "generate", "-m", name, "-p", case["prompt"], "-n", "16",
                          "--temperature", "0", "--json", "-t", "2"], capture_output=True, text=True, check=True)
    ours = json.loads(run.stdout.strip().splitlines()[-1])["generated_ids"][:16]
    want = case["greedy_ids"][:16]
    counts["hearth=llama.cpp"] += ours == peer
    counts["hearth=golden"] += ours == want
    counts["llama.cpp=golden"] += peer == want
print(name, {k: f"{v}/{len(golden['cases'])}" for k, v in counts.items()})
