"""Drives a running `hearth serve` with the official openai client.

usage: python openai_client.py BASE_URL API_KEY
Exits non-zero (with the failing check) when any check fails.
"""
import sys

import openai
from openai import OpenAI

base, key = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=120)
checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    checks += 1


models = client.models.list().data
check(len(models) == 1, "one model listed")
model = models[0].id
check(models[0].model_extra.get("max_model_len", 0) >= 2048, "max_model_len reported")

msgs = [{"role": "user", "content": "What is the capital of France?"}]

# Non-streamed, greedy.
r = client.chat.completions.create(model=model, messages=msgs, max_tokens=24, temperature=0)
text = r.choices[0].message.content
check(r.object == "chat.completion", "object")
check(len(text) > 0, "chat reply not empty")
check(r.choices[0].finish_reason in ("stop", "length"), "finish_reason")
check(r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, "usage adds up")

# Streamed with usage: same text as the non-streamed greedy reply.
stream = client.chat.completions.create(
    model=model, messages=msgs, max_tokens=24, temperature=0, stream=True,
    stream_options={"include_usage": True},
)
parts, usage, finish = [], None, None
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for c in chunk.choices:
        if c.delta.content:
            parts.append(c.delta.content)
        if c.finish_reason:
            finish = c.finish_reason
check("".join(parts) == text, f"stream text {''.join(parts)!r} == {text!r}")
check(finish == r.choices[0].finish_reason, "stream finish_reason")
check(usage is not None and usage.completion_tokens == r.usage.completion_tokens, "stream usage")
# The same prompt again: its full blocks come from the prefix cache.
check(usage.prompt_tokens_details.cached_tokens > 0, "cached_tokens on a repeated prompt")

# Log-probabilities.
r = client.chat.completions.create(
    model=model, messages=msgs, max_tokens=6, temperature=0, logprobs=True, top_logprobs=3
)
lp = r.choices[0].logprobs.content
check(len(lp) == r.usage.completion_tokens, "one logprob entry per token")
for e in lp:
    check(len(e.top_logprobs) == 3, "three alternatives")
    check(abs(e.top_logprobs[0].logprob - e.logprob) < 1e-5, "greedy picks the top token")
    check(e.logprob <= 0, "logprob <= 0")

# n choices with a seed: three choices, reproducible.
kw = dict(model=model, messages=msgs, max_tokens=8, temperature=1.0, n=3, seed=7)
a = client.chat.completions.create(**kw)
b = client.chat.completions.create(**kw)
check(sorted(c.index for c in a.choices) == [0, 1, 2], "n=3 gives indices 0..2")
check([c.message.content for c in a.choices] == [c.message.content for c in b.choices], "seeded n repeats")

# Completions: echo, logprobs, stop, streaming.
prompt = "The capital of France is"
r = client.completions.create(model=model, prompt=prompt, max_tokens=8, temperature=0, echo=True, logprobs=2)
c = r.choices[0]
check(c.text.startswith(prompt), "echo puts the prompt first")
check(len(c.logprobs.tokens) == r.usage.completion_tokens, "completion logprobs per token")
check(c.logprobs.text_offset[0] == len(prompt), "text_offset after the echo")
r = client.completions.create(model=model, prompt=prompt, max_tokens=30, temperature=0, stop=["."])
check("." not in r.choices[0].text and r.choices[0].finish_reason == "stop", "stop string ends the text")
s = client.completions.create(model=model, prompt=prompt, max_tokens=8, temperature=0, stream=True)
streamed = "".join(ch.choices[0].text for ch in s if ch.choices)
plain = client.completions.create(model=model, prompt=prompt, max_tokens=8, temperature=0).choices[0].text
check(streamed == plain, "streamed completion == plain")

# Moderation in OpenAI's schema.
mod = client.moderations.create(input=["I will kill you", "What a lovely day for a walk."])
check(len(mod.results) == 2, "one moderation result per input")
check(mod.results[0].flagged and not mod.results[1].flagged, "threat flagged, small talk not")
check(mod.results[0].categories.harassment_threatening, "harassment/threatening flagged")
check(0.0 <= mod.results[0].category_scores.violence <= 1.0, "scores in 0..1")

# Errors in OpenAI's shape.
try:
    client.chat.completions.create(model=model, messages=msgs, tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}])
    check(False, "tools should be refused")
except openai.BadRequestError as e:
    check(e.body["param"] == "tools", "400 names 'tools'")
try:
    client.completions.create(model=model, prompt="hello " * 9000, max_tokens=4)
    check(False, "a too-long prompt should be refused")
except openai.BadRequestError as e:
    check(e.body["code"] == "context_length_exceeded", "context_length_exceeded")
try:
    client.chat.completions.create(model=model, messages=msgs, temperature=5)
    check(False, "temperature 5 should be refused")
except openai.BadRequestError as e:
    check(e.body["param"] == "temperature", "400 names 'temperature'")
bad = OpenAI(base_url=f"{base}/v1", api_key="wrong", max_retries=0)
try:
    bad.models.list()
    check(False, "a wrong key should be refused")
except openai.AuthenticationError as e:
    check(e.body["type"] == "authentication_error", "401 authentication_error")

print(f"openai client: {checks} checks passed")
