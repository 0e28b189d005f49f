// Word timestamps: the text as words that light up as the audio reaches them.
import { call } from "./api.js";
import { h } from "./dom.js";

// The job's words once aligned: 409 until then, so ask again; null when it has none.
export async function fetchWords(jobId, signal) {
  for (let tries = 0; tries < 120; tries += 1) {
    try {
      return (await call(`/v1/jobs/${jobId}/timestamps`, { signal })).words;
    } catch (e) {
      if (e.status !== 409) throw e;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return null;
}

export function highlight(container, audio, words) {
  const spans = words.map((w) => h("span", { class: "word", "data-start": w.start, "data-end": w.end }, w.text));
  container.replaceChildren(...spans.flatMap((s, i) => (i ? [" ", s] : [s])));
  let current = null;
  let frame = 0;
  const tick = () => {
    const t = audio.currentTime;
    const at = spans.find((s, i) => t >= words[i].start && t < (words[i + 1] ? words[i + 1].start : words[i].end + 0.2));
    if (at !== current) {
      current?.classList.remove("spoken");
      at?.classList.add("spoken");
      current = at;
    }
    frame = audio.paused ? 0 : requestAnimationFrame(tick);
  };
  const start = () => {
    if (!frame) frame = requestAnimationFrame(tick);
  };
  audio.addEventListener("play", start);
  audio.addEventListener("seeked", tick);
  if (!audio.paused) start();
  return () => {
    cancelAnimationFrame(frame);
    audio.removeEventListener("play", start);
    audio.removeEventListener("seeked", tick);
  };
}
