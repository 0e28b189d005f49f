// Try it: synthesize a text, hear it as it is made, see who spoke it and how long it took, and
// follow the words as they are spoken.
import { call } from "./api.js";
import { alertBox, field, h, seconds } from "./dom.js";
import { canStream, finished, stream, waitFinal } from "./player.js";
import { fetchWords, highlight } from "./words.js";

function figure(label, value) {
  return [h("dt", {}, label), h("dd", {}, value)];
}

export function render(root, { config, params }) {
  const alert = alertBox();
  const voice = h("select", { name: "voice" });
  const text = h("textarea", { name: "text", rows: 4, required: true, maxlength: config.max_text_chars },
    "The farm reads this aloud, and each word lights up as it is spoken.");
  const quality = h("select", { name: "quality" }, config.tiers.map((t) => h("option", { value: t, selected: t === config.default_quality }, t)));
  const format = h("select", { name: "format" }, config.formats.map((f) => h("option", { value: f, selected: f === "mp3" }, f)));
  const speed = h("input", { type: "number", name: "speed", value: "1", min: config.min_speed, max: config.max_speed, step: "0.05", required: true });
  const submit = h("button", { type: "submit" }, "Speak");
  const audio = h("audio", { controls: true, "aria-label": "The synthesized speech" });
  const facts = h("dl", { class: "facts" });
  const attempts = h("ol", { class: "attempts", "aria-label": "Attempts" });
  const words = h("p", { class: "words", "aria-label": "Words, highlighted as they are spoken" });
  const state = h("p", { class: "hint", role: "status" });
  let controller = null;
  let unhighlight = () => {};

  const form = h(
    "form",
    { class: "card", "aria-labelledby": "try-title" },
    h("h1", { id: "try-title" }, "Try it"),
    field("Text", text),
    h("div", { class: "grid" },
      field("Voice", voice),
      field("Quality tier", quality),
      field("Format", format, "The stored file's format; playback streams MP3"),
      field("Speed", speed, `${config.min_speed}–${config.max_speed}`),
    ),
    submit,
    alert,
  );

  call("/v1/voices")
    .then((voices) => {
      const wanted = params.get("voice") || config.default_voice;
      voice.replaceChildren(...voices.map((v) =>
        h("option", { value: v.id, selected: v.id === wanted }, `${v.name} (${v.cloned ? "cloned" : v.engine}, ${v.language})${v.available ? "" : " — no live worker"}`)));
    })
    .catch((e) => alert.show(e));

  function show(job, timing) {
    const fallbacks = job.attempts.filter((a) => a.outcome !== "succeeded" && a.outcome !== "running").length;
    facts.replaceChildren(
      ...figure("Status", job.status),
      ...figure("Engine", job.engine || "—"),
      ...figure("Voice spoken", job.spoken_voice || job.voice || "—"),
      ...figure("Cache", job.cache),
      ...figure("Fallback attempts", String(fallbacks)),
      ...figure("Synthesis time", seconds(job.synthesis_seconds)),
      ...figure("Time to first audio", timing.first === null ? "—" : seconds(timing.first)),
      ...figure("Audio", seconds(job.duration)),
    );
    attempts.replaceChildren(...job.attempts.map((a) =>
      h("li", {}, `${a.engine} on ${a.worker || "?"}: ${a.outcome}${a.error ? ` — ${a.error}` : ""}`)));
    if (job.error) alert.show(job.error);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    controller?.abort();
    controller = new AbortController();
    const { signal } = controller;
    alert.clear();
    unhighlight();
    words.replaceChildren();
    attempts.replaceChildren();
    facts.replaceChildren();
    audio.removeAttribute("src");
    submit.disabled = true;
    const timing = { start: performance.now(), first: null };
    try {
      // Always timed: the words are highlighted, and even a cache hit is then a job to stream.
      let job = await call("/v1/jobs", {
        method: "POST",
        signal,
        json: { text: text.value, voice: voice.value, quality: quality.value, format: format.value, speed: Number(speed.value), timestamps: true },
      });
      state.textContent = job.cache === "hit" ? "Found in the cache." : "Queued; playing as it is made.";
      show(job, timing);
      const firstAudio = () => {
        timing.first = (performance.now() - timing.start) / 1000;
      };
      const final = waitFinal(job.id, signal, (j) => show(j, timing));
      let streamed = false;
      if (canStream()) {
        try {
          await stream(audio, job.id, firstAudio, signal);
          streamed = true;
        } catch (e) {
          if (e.name === "AbortError") throw e;
          state.textContent = `The live stream stopped (${e.message}); the finished file plays instead.`;
        }
      }
      job = await final;
      show(job, timing);
      if (job.status !== "succeeded") return;
      if (!streamed) {
        await finished(audio, job);
        timing.first ??= (performance.now() - timing.start) / 1000;
        show(job, timing);
      }
      state.textContent = `Done: ${job.engine} spoke it.`;
      const timed = await fetchWords(job.id, signal);
      if (timed) unhighlight = highlight(words, audio, timed);
    } catch (e) {
      if (e.name !== "AbortError") alert.show(e);
    } finally {
      submit.disabled = false;
    }
  });

  root.append(
    form,
    h("section", { class: "card", "aria-labelledby": "result-title" },
      h("h2", { id: "result-title" }, "Result"),
      state, audio, words, facts, h("h3", {}, "Attempts"), attempts),
  );
  return () => {
    controller?.abort();
    unhighlight();
    audio.pause();
  };
}
