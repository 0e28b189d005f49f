// A sample's analysis as meters against the limits the farm judges samples by
// (voicefarm.reference.judge, served in /console/config.json).
import { h, uid } from "./dom.js";

function meter(label, value, text, range) {
  const id = uid("meter");
  return h(
    "div",
    { class: "meter" },
    h("label", { for: id }, label),
    h("meter", { id, value, ...range, "aria-describedby": `${id}-text` }),
    h("span", { id: `${id}-text`, class: "figure" }, text),
  );
}

export function analysisView(a, limits) {
  const l = limits;
  return h(
    "section",
    { class: "analysis", "aria-label": "Sample analysis" },
    h("h3", {}, "Sample analysis"),
    meter(
      "Duration",
      Math.min(a.duration, l.max_seconds),
      `${a.duration.toFixed(1)} s (${l.min_seconds}–${l.max_seconds} s allowed, ${l.recommended_seconds} s or more recommended)`,
      { min: 0, max: l.max_seconds, low: l.recommended_seconds, high: l.max_seconds, optimum: l.max_seconds * 0.5 },
    ),
    meter(
      "Signal to noise",
      Math.max(0, Math.min(a.snr_db, 60)),
      `${a.snr_db.toFixed(1)} dB (at least ${l.min_snr_db} dB)`,
      { min: 0, max: 60, low: l.min_snr_db + 10, optimum: 60 },
    ),
    meter(
      "Loudness",
      Math.max(-70, Math.min(a.loudness_lufs, 0)),
      `${a.loudness_lufs.toFixed(1)} LUFS (quiet below ${l.quiet_lufs}); peak ${a.peak_dbfs.toFixed(1)} dBFS`,
      { min: -70, max: 0, low: l.quiet_lufs, high: -6, optimum: -20 },
    ),
    meter(
      "Speech ratio",
      a.speech_ratio,
      `${(a.speech_ratio * 100).toFixed(0)} % speech (at least ${(l.min_speech_ratio * 100).toFixed(0)} %)`,
      { min: 0, max: 1, low: l.min_speech_ratio, optimum: 1 },
    ),
    meter(
      "Clipping",
      Math.min(a.clipping_ratio, l.max_clipping_ratio * 2),
      `${(a.clipping_ratio * 100).toFixed(2)} % of samples clipped (at most ${(l.max_clipping_ratio * 100).toFixed(1)} %)`,
      { min: 0, max: l.max_clipping_ratio * 2, high: l.max_clipping_ratio, optimum: 0 },
    ),
    h("p", { class: "hint" }, `${a.format}, ${a.sample_rate} Hz, ${a.channels} channel${a.channels > 1 ? "s" : ""}`),
    a.warnings.length ? h("ul", { class: "warnings", "aria-label": "Warnings" }, a.warnings.map((w) => h("li", {}, w))) : null,
  );
}
