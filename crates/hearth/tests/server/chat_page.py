"""Drives the chat page of a running `hearth serve` in real headless Chromium.

usage: python chat_page.py BASE_URL
Types a message, watches the reply stream in, asks a follow-up (multi-turn), and
stops a long reply with the Stop button. Exits non-zero on any failure.
"""
import shutil
import sys

from playwright.sync_api import sync_playwright

base = sys.argv[1]
chromium = shutil.which("chromium") or shutil.which("chromium-browser")
if not chromium:
    raise SystemExit("FAILED: no chromium on PATH (Debian package 'chromium')")

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Nothing outside the binary: every request goes to our server.
    outside = []
    page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
    page.goto(base + "/")
    page.wait_for_function("document.getElementById('model').textContent.startsWith('model:')", timeout=30000)
    model_line = page.inner_text("#model")
    assert "context" in model_line, model_line

    # Record every text the reply bubble is given, from the mutation records themselves
    # (a starved browser may batch several writes into one observer call, and may read
    # the whole body at once): streaming means the page wrote the reply partly, event by
    # event, before it ended (its meta line is added at the end).
    page.evaluate("""() => {
        window.__seen = [];
        new MutationObserver((records) => {
            for (const r of records) {
                if (!r.target.classList || !r.target.classList.contains('assistant')) continue;
                for (const n of r.addedNodes) {
                    if (n.nodeType === Node.TEXT_NODE) window.__seen.push([n.textContent.length, false]);
                    else if (n.classList && n.classList.contains('meta')) window.__seen.push([0, true]);
                }
            }
        }).observe(document.getElementById('log'), {subtree: true, childList: true});
    }""")
    page.fill("#temperature", "0")
    page.fill("#max_tokens", "48")
    page.fill("#input", "Write a short poem about the sea.")
    page.press("#input", "Enter")
    page.wait_for_selector(".assistant .meta", timeout=60000)
    reply = page.inner_text(".assistant")
    seen = page.evaluate("window.__seen")
    assert len(reply.strip()) > 0, "empty reply"
    end = next((i for i, (_, done) in enumerate(seen) if done), len(seen))
    final = max(n for n, _ in seen[:end])
    partial = sorted({n for n, _ in seen[:end] if 0 < n < final})
    assert len(partial) >= 2, f"reply did not stream: lengths seen before the end {partial} (final {final})"

    # A second turn: the page sends the whole conversation.
    page.fill("#input", "And of Italy?")
    page.press("#input", "Enter")
    page.wait_for_function("document.querySelectorAll('.assistant .meta').length == 2", timeout=60000)
    assert page.locator(".user").count() == 2 and page.locator(".assistant").count() == 2

    # Stop a long reply midway.
    page.fill("#max_tokens", "1500")
    page.fill("#temperature", "1")
    page.fill("#input", "Write a very long story about a dragon, with many chapters.")
    page.press("#input", "Enter")
    page.wait_for_function(
        "document.querySelectorAll('.assistant')[2] && document.querySelectorAll('.assistant')[2].textContent.length > 20",
        timeout=60000)
    page.click("#stop")
    page.wait_for_function("document.querySelectorAll('.assistant .meta').length == 3", timeout=30000)
    meta = page.locator(".assistant .meta").nth(2).inner_text()
    assert meta == "stopped", f"stop button: meta is {meta!r}"
    assert page.is_enabled("#send"), "send re-enabled after stop"

    assert not errors, f"page errors: {errors}"
    assert not outside, f"requests outside the server: {outside}"
    browser.close()
print("chat page: streamed, multi-turn, stopped")
