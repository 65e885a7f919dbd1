#!/usr/bin/env python3
"""Near-dedup benchmark: `hearth data dedup` vs datasketch on the same corpus, same run.

usage: python3 tools/bench_dedup.py [--hearth BIN] [--corpus FILE.jsonl] [--threads N]

Without --corpus, the 20,000-document corpus of ../shared/data/make_dedup_corpus.py (seed
1234) is generated into a temporary directory. datasketch 2.x is installed from PyPI into
~/.cache/hearth/venv-data (or $HEARTH_DATA_VENV) when missing, and the script re-runs
itself there.

Truth (the corpus's own definition): a document is a duplicate to remove when the exact
Jaccard similarity of its 5-word shingle set with an earlier document of its cluster
(the chain of `dup_of` links) is >= 0.8.

datasketch runs its fast path: MinHash(num_perm=128).update_batch over the 5-word
shingles, then MinHashLSH(threshold=0.8): a document is removed when the index already
holds a candidate for it, else it is inserted. Its time covers shingling, hashing and
the index, on texts already in memory. hearth's time is the whole command: reading the
JSONL, dedup, writing the kept shards and clusters (median of 3 runs). Both print docs/s, precision and
recall of the removed set, and the speed ratio.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("HEARTH_DATA_VENV", Path.home() / ".cache/hearth/venv-data"))
NGRAM, NUM_PERM, THRESHOLD = 5, 128, 0.8


def ensure_datasketch():
    try:
        import datasketch  # noqa: F401
        return
    except ImportError:
        pass
    py = VENV / "bin" / "python"
    if Path(sys.executable).resolve() == py.resolve():
        sys.exit("datasketch is missing from the benchmark venv and could not be installed")
    if not py.exists():
        print(f"creating {VENV}", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    subprocess.check_call([str(py), "-m", "pip", "install", "-q", "datasketch>=2,<3"])
    os.execv(str(py), [str(py), *sys.argv])


def shingles(text):
    w = text.split()
    if len(w) < NGRAM:
        return {" ".join(w)} if w else set()
    return {" ".join(w[i:i + NGRAM]) for i in range(len(w) - NGRAM + 1)}


def jaccard(a, b):
    return len(a & b) / len(a | b) if a or b else 1.0


def truth_removed(docs):
    root, members, sets, removed = {}, {}, {}, set()
    for d in docs:
        r = root[d["dup_of"]] if d["dup_of"] else d["id"]
        root[d["id"]] = r
        s = shingles(d["text"])
        if any(jaccard(s, sets[e]) >= THRESHOLD for e in members.get(r, [])):
            removed.add(d["id"])
        members.setdefault(r, []).append(d["id"])
        sets[d["id"]] = s
    return removed


def run_datasketch(docs):
    from datasketch import MinHash, MinHashLSH
    t = time.perf_counter()
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    removed = set()
    for d in docs:
        m = MinHash(num_perm=NUM_PERM)
        m.update_batch([s.encode("utf-8") for s in shingles(d["text"])])
        if lsh.query(m):
            removed.add(d["id"])
        else:
            lsh.insert(d["id"], m)
    return removed, time.perf_counter() - t, f"{lsh.b} bands x {lsh.r} rows"


def run_hearth(binary, corpus, threads):
    with tempfile.TemporaryDirectory() as out:
        cmd = [binary, "data", "dedup", "--input", str(corpus), "--output", out,
               "--ngram", str(NGRAM), "--num-perm", str(NUM_PERM),
               "--threshold", str(THRESHOLD), "--json"]
        if threads:
            cmd += ["--threads", str(threads)]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        secs = time.perf_counter() - t
        if proc.returncode != 0:
            sys.exit(f"hearth failed:\n{proc.stderr}")
        report = json.loads(proc.stdout)
        kept = set()
        for shard in sorted((Path(out) / "kept").glob("part-*.jsonl")):
            with open(shard) as f:
                kept.update(json.loads(line)["id"] for line in f)
    lsh = report["lsh"]
    return kept, secs, f"{lsh['bands']} bands x {lsh['rows']} rows"


def pr(removed, truth):
    tp = len(removed & truth)
    return (tp / len(removed) if removed else 1.0), (tp / len(truth) if truth else 1.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hearth", default=str(REPO / "target/release/hearth"))
    ap.add_argument("--corpus")
    ap.add_argument("--threads", type=int)
    args = ap.parse_args()
    ensure_datasketch()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus
        if not corpus:
            corpus = Path(tmp) / "corpus.jsonl"
            script = REPO.parent / "shared/data/make_dedup_corpus.py"
            if not script.exists():
                script = Path("/work/shared/data/make_dedup_corpus.py")
            subprocess.check_call([sys.executable, str(script), str(corpus), "20000", "1234"])
        # hearth first, before this process holds the corpus (forking a big process costs);
        # the median of 3 runs.
        runs = [run_hearth(args.hearth, corpus, args.threads) for _ in range(3)]
        kept, h_secs, h_lsh = sorted(runs, key=lambda r: r[1])[1]
        if any(r[0] != kept for r in runs):
            sys.exit("hearth kept different documents on different runs")
        with open(corpus) as f:
            docs = [json.loads(line) for line in f]
        truth = truth_removed(docs)
        ids = {d["id"] for d in docs}
        h_removed = ids - kept
        d_removed, d_secs, d_lsh = run_datasketch(docs)
    n = len(docs)
    print(f"corpus: {n} documents, {len(truth)} duplicates to remove (truth)")
    print(f"{'system':<12} {'docs/s':>10} {'removed':>8} {'precision':>10} {'recall':>8}  lsh")
    for name, removed, secs, lsh in [("datasketch", d_removed, d_secs, d_lsh),
                                     ("hearth", h_removed, h_secs, h_lsh)]:
        p, r = pr(removed, truth)
        print(f"{name:<12} {n / secs:>10.0f} {len(removed):>8} {p:>10.4f} {r:>8.4f}  {lsh}")
    print(f"speed ratio hearth / datasketch: {d_secs / h_secs:.1f}x")


if __name__ == "__main__":
    main()
