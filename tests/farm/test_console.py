"""The browser console, in a real browser against the real farm: Debian's Chromium, driven by
Playwright. Each page is checked with axe-core (bundled by axe-playwright-python) at desktop
and phone width, and saved as a screenshot under tests/artifacts/console/."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.farm.conftest import ROOT, RUN
from voicefarm.ops.supervisor import Farm
from voicefarm.settings import get_settings

CHROMIUM = "/usr/bin/chromium"  # Debian's (tests/services.sh): Playwright's own download needs the internet
# Without the background-networking flags Chromium floods the closed network; the autoplay flag
# lets the console start playback without a click.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    # A microphone that plays Chromium's own test beeps, granted without asking.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
ARTIFACTS = ROOT / "tests" / "artifacts" / "console"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SECONDS = 1000  # Playwright's timeouts are in milliseconds
WIDER = """[...document.querySelectorAll('body *')]
  .filter((e) => !e.parentElement.closest('.scroll') && e.getBoundingClientRect().right > innerWidth + 1)
  .map((e) => `${e.tagName.toLowerCase()}.${e.className}: ${e.textContent.slice(0, 40)}`)"""


# Module-scoped: Playwright's sync API keeps its event loop running in this thread while it is
# started, and every asyncio.run() after it (the async SDK's tests) would refuse to start.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: run tests/services.sh", pytrace=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, farm: Farm) -> Iterator[Page]:
    """A fresh tab on the farm; a script error on any page fails the test."""
    context = browser.new_context(base_url=farm.url, viewport=DESKTOP, accept_downloads=True)
    tab = context.new_page()
    script_errors: list[str] = []
    tab.on("pageerror", lambda e: script_errors.append(str(e)))
    yield tab
    context.close()
    assert not script_errors, script_errors


def sign_in(page: Page, key: str) -> None:
    page.goto("/console/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Pages")).to_be_visible()


def accessible(page: Page, name: str) -> None:
    """axe-core finds nothing serious or critical, at desktop and at phone width; a screenshot of each."""
    for width, viewport in (("", DESKTOP), ("-phone", PHONE)):
        page.set_viewport_size(viewport)
        page.screenshot(path=str(ARTIFACTS / f"{name}{width}.png"), full_page=True)
        violations = [
            f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
            for v in Axe().run(page).response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert not violations, f"{name}{width}: {violations}"
        # Readable at phone width: nothing reaches past the screen's edge but inside a table's own
        # scrolling region.
        wide = page.evaluate("document.documentElement.scrollWidth") > viewport["width"]
        assert not wide, f"{name}{width}: wider than the screen: {page.evaluate(WIDER)}"
    page.set_viewport_size(DESKTOP)


def wav(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV")
    return buf.getvalue()


def test_sign_in_with_the_keyboard_keeps_the_key_in_session_storage_only(page: Page, api_key: str) -> None:
    page.goto("/console/")
    accessible(page, "sign-in")
    key = page.get_by_label("API key")
    expect(key).to_be_focused()
    page.keyboard.type("not-a-key")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_have_text("invalid API key")
    key.fill("")
    page.keyboard.type(api_key)
    page.keyboard.press("Enter")
    expect(page.locator("#tenant")).to_have_text("Tenant tenant-a")
    assert page.evaluate("sessionStorage.getItem('voicefarm.apiKey')") == api_key
    assert page.evaluate("localStorage.length") == 0 and "voicefarm" not in page.evaluate("document.cookie")
    page.get_by_role("navigation").get_by_role("link", name="Try it").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Try it", level=1)).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_a_speech_sample_is_analysed_played_and_deleted(page: Page, api_key: str, speech_wav: bytes) -> None:
    sign_in(page, api_key)
    name = f"Console narrator {RUN}"
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Description").fill("read slowly")
    page.get_by_label("Sample file").set_input_files(
        {"name": "speech.wav", "mimeType": "audio/wav", "buffer": speech_wav}
    )
    page.get_by_label("The speaker agreed").check()
    page.get_by_role("button", name="Upload and analyse").click()
    expect(page.get_by_text(f"Cloned “{name}”")).to_be_visible(timeout=30 * SECONDS)
    speech = page.get_by_role("meter", name="Speech ratio")
    assert float(speech.get_attribute("value")) > 0.5
    assert float(page.get_by_role("meter", name="Signal to noise").get_attribute("value")) > 25
    assert page.get_by_role("meter", name="Clipping").get_attribute("value") == "0"
    expect(page.locator(".analysis")).to_contain_text(re.compile(r"\d+\.\d s \(3–30 s allowed"))
    row = page.locator("tr", has_text=name)
    expect(row).to_contain_text("cloned (falls back to en_US-joe-medium)")
    accessible(page, "voices")

    row.get_by_role("button", name=f"Play sample of {name}").click()
    page.wait_for_function(
        "() => { const a = document.querySelector('audio'); return a.duration > 3 && !a.error; }",
        timeout=20 * SECONDS,
    )

    row.get_by_role("button", name=f"Delete {name}").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("the uploaded sample, the speaker latents")
    expect(dialog).to_contain_text("the jobs that used it")
    dialog.get_by_role("button", name="Delete voice").click()
    expect(row).to_have_count(0)


def test_a_silent_sample_shows_the_refusal_reason(page: Page, api_key: str) -> None:
    sign_in(page, api_key)
    page.get_by_label("Name", exact=True).fill("Silence")
    silent = wav(np.zeros(24000 * 5, dtype=np.float32), 24000)
    page.get_by_label("Sample file").set_input_files({"name": "silent.wav", "mimeType": "audio/wav", "buffer": silent})
    page.get_by_label("The speaker agreed").check()
    page.get_by_role("button", name="Upload and analyse").click()
    expect(page.locator(".refused")).to_contain_text("Refused: the recording is silent", timeout=30 * SECONDS)
    accessible(page, "voices-refused")


# The console's own recorder, run in the page: MediaRecorder's WebM, decoded and written as WAV.
RECORD = """async () => {
  const { startRecording } = await import("/console/record.js");
  const recording = await startRecording();
  await new Promise((resolve) => setTimeout(resolve, 4000));
  const bytes = new Uint8Array(await (await recording.stop()).arrayBuffer());
  return btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""));
}"""


def test_a_microphone_recording_is_uploaded_as_wav(page: Page, api_key: str) -> None:
    """Chromium's fake microphone (its test beeps), recorded with MediaRecorder and sent as WAV."""
    page.context.grant_permissions(["microphone"])
    sign_in(page, api_key)
    samples, rate = sf.read(io.BytesIO(base64.b64decode(page.evaluate(RECORD))))
    assert 3.5 < len(samples) / rate < 6 and np.abs(samples).max() > 0.01  # the beeps, in a readable WAV

    page.get_by_label("Name", exact=True).fill("Recorded")
    page.get_by_role("button", name="Record from the microphone").click()
    expect(page.get_by_text("Recording…")).to_be_visible()
    page.wait_for_timeout(4500)
    page.get_by_role("button", name="Stop recording").click()
    expect(page.get_by_text("Recorded: it is uploaded instead of a file.")).to_be_visible(timeout=10 * SECONDS)
    page.get_by_label("The speaker agreed").check()
    with page.expect_response("**/v1/voices") as answer:
        page.get_by_role("button", name="Upload and analyse").click()
    # Whatever the farm made of the beeps, the page says it: the analysis, or the API's reason.
    said = "Cloned “Recorded”" if answer.value.status == 201 else f"Refused: {answer.value.json()['error']}"
    expect(page.locator(".result")).to_contain_text(said, timeout=30 * SECONDS)
    assert "readable" not in said


# Holds the console's first load of its config until the test releases it, and counts the loads
# parsed. The page's routing runs in the microtask after a parse, before any task of Playwright's
# polls, so once the count is reached every route waiting on a load has rendered or given up.
HOLD_CONFIG = """(() => {
  const fetch = window.fetch.bind(window);
  const json = Response.prototype.json;
  let held = false;
  const gate = new Promise((resolve) => { window.releaseConfig = resolve; });
  window.configParsed = 0;
  window.fetch = (url, init) => {
    if (held || !String(url).endsWith("/console/config.json")) return fetch(url, init);
    held = true;
    return gate.then(() => fetch(url, init));
  };
  Response.prototype.json = async function () {
    const value = await json.call(this);
    if (this.url.endsWith("/console/config.json")) window.configParsed += 1;
    return value;
  };
})();"""


def test_try_it_streams_the_speech_and_times_its_words(page: Page, api_key: str) -> None:
    # Signing in routes to the first page, which waits for the config; going to #try meanwhile
    # routes again. The text is typed into the second route's form before the first route's
    # config arrives: that late route must not render its page over the form (it once did, and
    # the console spoke its default text instead of the one typed).
    page.add_init_script(HOLD_CONFIG)
    sign_in(page, api_key)
    page.goto("/console/#try")
    text = f"Welcome to the console, run {RUN}. Every word lights up as it is spoken."
    page.get_by_label("Text").fill(text)
    page.evaluate("releaseConfig()")
    page.wait_for_function("configParsed === 2")
    expect(page.get_by_label("Text")).to_have_value(text)
    page.get_by_label("Voice").select_option("en_US-joe-medium")
    page.get_by_label("Quality tier").select_option("fast")
    page.get_by_label("Format").select_option("mp3")
    page.get_by_role("button", name="Speak").click()
    page.wait_for_function(
        "() => { const a = document.querySelector('audio');"
        " return a.duration > 0 && Number.isFinite(a.duration) && !a.error; }",
        timeout=60 * SECONDS,
    )
    expect(page.get_by_role("status")).to_have_text("Done: piper spoke it.", timeout=60 * SECONDS)
    facts = page.locator(".facts")
    expect(facts).to_contain_text("Enginepiper")
    expect(facts).to_contain_text("Cachemiss")
    expect(facts).to_contain_text("Fallback attempts0")
    expect(facts).to_contain_text(re.compile(r"Time to first audio\d+\.\d\d s"))
    expect(facts).to_contain_text(re.compile(r"Synthesis time\d+\.\d\d s"))
    assert page.evaluate("document.querySelector('audio').error") is None
    words = page.locator(".word")
    expect(words).to_have_count(len(text.split()), timeout=60 * SECONDS)
    expect(words.first).to_have_text("Welcome")
    page.evaluate("document.querySelector('audio').currentTime = 0; document.querySelector('audio').play()")
    expect(page.locator(".word.spoken")).to_have_count(1, timeout=10 * SECONDS)
    page.evaluate("document.querySelector('audio').pause()")
    accessible(page, "try-it")


def test_the_jobs_page_watches_a_job_go_from_queued_to_succeeded(page: Page, api_key: str, http: httpx.Client) -> None:
    sign_in(page, api_key)
    page.goto("/console/#jobs")
    expect(page.get_by_role("heading", name="Jobs and batches")).to_be_visible()
    # The farm's one Piper process is busy with a long text, so the next job waits its turn. One
    # segment's worth at most: a document's first task only sends its segments out, and frees the
    # process at once for the next job.
    long_text = " ".join(f"Sentence {n} of a long text that keeps the worker busy, run {RUN}." for n in range(25))
    assert len(long_text) <= get_settings().segment_chars
    busy = http.post("/v1/jobs", json={"text": long_text, "quality": "fast"})
    assert busy.status_code == 202, busy.text
    watched = http.post("/v1/jobs", json={"text": f"Watch me, run {RUN}.", "quality": "fast"}).json()
    row = page.locator(f"tr[data-job='{watched['id']}']")
    expect(row.locator(".status")).to_have_text("queued", timeout=10 * SECONDS)
    expect(row.locator(".timeline")).to_contain_text("not started")
    # Another behind it, as long as the first, canceled from its row: long enough that it cannot
    # have ended first, whether it was still waiting or had just begun.
    unwanted = http.post("/v1/jobs", json={"text": long_text.replace("busy", "waiting"), "quality": "fast"}).json()
    unwanted_row = page.locator(f"tr[data-job='{unwanted['id']}']")
    unwanted_row.get_by_role("button", name=re.compile("Cancel job")).click()
    expect(unwanted_row.locator(".status")).to_have_text("canceled", timeout=10 * SECONDS)
    expect(unwanted_row.get_by_role("button", name=re.compile("Cancel job"))).to_be_disabled()
    expect(row.locator(".status")).to_have_text("succeeded", timeout=120 * SECONDS)
    expect(row).to_contain_text("piper: succeeded")
    outcomes = [a["outcome"] for a in http.get(f"/v1/jobs/{unwanted['id']}").json()["attempts"]]
    assert outcomes in ([], ["canceled"]), outcomes  # never run, or stopped: never succeeded nor moved on
    expect(row.locator(".timeline")).to_contain_text(re.compile(r"started \+\d+\.\d\d s"))
    expect(row.locator(".timeline")).to_contain_text(re.compile(r"finished \+\d+\.\d\d s"))

    batch = http.post("/v1/batches", json={"phrases": [f"One {RUN}.", f"Two {RUN}."], "quality": "fast"}).json()
    batch_row = page.locator(f"tr[data-batch='{batch['id']}']")
    expect(batch_row.locator(".status")).to_have_text("done", timeout=60 * SECONDS)
    expect(batch_row).to_contain_text("100 % of 2")
    with page.expect_download() as download:
        batch_row.get_by_role("button", name=re.compile("Download manifest")).click()
    manifest = json.loads(Path(download.value.path()).read_text())
    assert [item["text"] for item in manifest["manifest"]] == [f"One {RUN}.", f"Two {RUN}."]
    accessible(page, "jobs")


def test_the_ops_page_is_for_admin_keys(page: Page, admin_key: str, api_key: str) -> None:
    sign_in(page, admin_key)
    page.goto("/console/#ops")
    piper = page.locator("tr[data-engine='piper']")
    expect(piper.locator(".status")).to_have_text("up", timeout=20 * SECONDS)
    workers = piper.get_by_role("link", name=re.compile("piper live workers: 1"))
    assert workers.get_attribute("href") == "http://127.0.0.1:3000/d/voicefarm-overview/voicefarm?viewPanel=3"
    expect(page.get_by_role("region", name="The last hour")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Job failure rate"))).to_have_attribute(
        "href", re.compile(r"viewPanel=10$")
    )
    expect(page.locator(".facts").last).to_contain_text("Renditions")
    accessible(page, "ops")

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, api_key)
    page.goto("/console/#ops")
    expect(page.get_by_role("alert")).to_have_text("this endpoint needs an admin API key")
    expect(page.get_by_role("region", name="Engines")).to_be_hidden()
    accessible(page, "ops-refused")
