#!/usr/bin/env python3
"""Asks a served judge (a LoRA adapter trained with `hearth finetune` on
`hearth guard eval-moderation --write-judge-training` records) for its verdict on every
sample of one half of OpenAI's moderation samples, and writes `{"line", "reply"}` lines
for `hearth guard eval-moderation --judge-replies` (which then scores the judge alone with
`--merge judge-only`, or merged with the term lists). Standard library only.

    hearth guard eval-moderation --data samples-1680.jsonl --split test \\
        --write-judge-training test.jsonl
    python3 tools/judge_replies.py http://127.0.0.1:8094 guard samples-1680.jsonl \\
        test.jsonl test replies.jsonl
    hearth guard eval-moderation --data samples-1680.jsonl --split test \\
        --judge-replies replies.jsonl --merge judge-only
"""
import concurrent.futures
import json
import sys
import urllib.request


def main():
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    url, model, samples, records, split, out_path = sys.argv[1:]
    src = open(samples, encoding="utf-8").read().split("\n")
    parity = {"dev": 0, "test": 1}[split]
    lines = [i + 1 for i, l in enumerate(src) if i % 2 == parity and l.strip()]
    recs = [json.loads(l) for l in open(records, encoding="utf-8")]
    if len(lines) != len(recs):
        sys.exit(f"{records}: {len(recs)} records, but the {split} half has {len(lines)} samples")

    def ask(k):
        body = json.dumps({"model": model, "messages": [recs[k]["messages"][0]],
                           "max_tokens": 12, "temperature": 0}).encode()
        req = urllib.request.Request(url.rstrip("/") + "/v1/chat/completions", body,
                                     {"Content-Type": "application/json"})
        reply = json.load(urllib.request.urlopen(req, timeout=600))
        return {"line": lines[k], "reply": reply["choices"][0]["message"]["content"]}

    with open(out_path, "w", encoding="utf-8") as out, \
            concurrent.futures.ThreadPoolExecutor(4) as pool:
        for n, row in enumerate(pool.map(ask, range(len(recs))), 1):
            out.write(json.dumps(row) + "\n")
            if n % 100 == 0:
                print(f"{n}/{len(recs)}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
