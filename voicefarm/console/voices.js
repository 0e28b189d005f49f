// Voices: the built-in and cloned voices; clone one from a file or the microphone, see the
// sample's analysis (or why it was refused), play, edit and delete cloned ones.
import { analysisView } from "./analysis.js";
import { blob, call } from "./api.js";
import { alertBox, field, h, table } from "./dom.js";
import { startRecording } from "./record.js";

// One option a voice id: the first engine that has it names it.
function fallbackOptions(builtIn, selected) {
  const first = new Map();
  for (const v of builtIn) if (!first.has(v.id)) first.set(v.id, v);
  return [...first.values()].map((v) => h("option", { value: v.id, selected: v.id === selected }, `${v.name} (${v.id})`));
}

function dialog(title, ...content) {
  const d = h("dialog", { "aria-labelledby": `${title.id}` }, title, ...content);
  d.addEventListener("close", () => d.remove());
  document.body.append(d);
  d.showModal();
  return d;
}

export function render(root, { config }) {
  const alert = alertBox();
  const player = h("audio", { controls: true, "aria-label": "Voice sample" });
  const list = table("Voices", ["Name", "Id", "Language", "Engine", "Version", "State", "Actions"]);
  const result = h("div", { class: "result", "aria-live": "polite" });
  let voices = [];

  async function refresh() {
    try {
      voices = await call("/v1/voices");
    } catch (e) {
      alert.show(e);
      return;
    }
    list.body.replaceChildren(...voices.map(row));
    fallback.replaceChildren(...fallbackOptions(builtIn(), config.default_voice));
  }

  const builtIn = () => voices.filter((v) => !v.cloned);

  function row(v) {
    const actions = v.cloned
      ? [
          h("button", { type: "button", onclick: () => play(v) }, `Play sample`, h("span", { class: "visually-hidden" }, ` of ${v.name}`)),
          h("button", { type: "button", onclick: () => edit(v) }, "Edit", h("span", { class: "visually-hidden" }, ` ${v.name}`)),
          h("button", { type: "button", class: "danger", onclick: () => remove(v) }, "Delete", h("span", { class: "visually-hidden" }, ` ${v.name}`)),
        ]
      : [];
    return h(
      "tr",
      { "data-voice": v.id },
      h("td", {}, v.name, v.description ? h("div", { class: "hint" }, v.description) : null),
      h("td", {}, h("code", {}, v.id)),
      h("td", {}, v.language),
      h("td", {}, v.cloned ? `cloned (falls back to ${v.fallback_voice})` : v.engine),
      h("td", {}, v.version),
      h("td", {}, v.available ? "available" : "no live worker"),
      h("td", {}, h("div", { class: "actions" }, h("a", { href: `#try?voice=${encodeURIComponent(v.id)}` }, "Try", h("span", { class: "visually-hidden" }, ` ${v.name}`)), actions)),
    );
  }

  async function play(v) {
    alert.clear();
    try {
      player.src = URL.createObjectURL(await blob(`/v1/voices/${encodeURIComponent(v.id)}/sample`));
      player.setAttribute("aria-label", `Sample of ${v.name}`);
      await player.play();
    } catch (e) {
      alert.show(e);
    }
  }

  function edit(v) {
    const name = h("input", { name: "name", value: v.name, required: true, maxlength: 200 });
    const description = h("textarea", { name: "description", rows: 3, maxlength: 2000 }, v.description || "");
    const fb = h("select", { name: "fallback_voice" }, fallbackOptions(builtIn(), v.fallback_voice));
    const err = alertBox();
    const title = h("h2", { id: "edit-title" }, `Edit ${v.name}`);
    const form = h(
      "form",
      { method: "dialog" },
      field("Name", name),
      field("Description", description),
      field("Fallback voice", fb, "Spoken by engines that cannot clone"),
      err,
      h("div", { class: "buttons" }, h("button", { type: "submit" }, "Save"), h("button", { type: "button", class: "secondary", onclick: () => d.close() }, "Cancel")),
    );
    const d = dialog(title, form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = new FormData(form);
      try {
        await call(`/v1/voices/${encodeURIComponent(v.id)}`, { method: "PATCH", form: body });
        d.close();
        refresh();
      } catch (e) {
        err.show(e);
      }
    });
  }

  function remove(v) {
    const err = alertBox();
    const title = h("h2", { id: "delete-title" }, `Delete ${v.name}?`);
    const confirm = h("button", { type: "button", class: "danger" }, "Delete voice");
    const d = dialog(
      title,
      h("p", {}, "This purges, for good: the uploaded sample, the speaker latents every engine made from it, every audio file synthesized in this voice (stored files, cache entries and their URLs), and the jobs that used it."),
      err,
      h("div", { class: "buttons" }, confirm, h("button", { type: "button", class: "secondary", autofocus: true, onclick: () => d.close() }, "Cancel")),
    );
    confirm.addEventListener("click", async () => {
      try {
        await call(`/v1/voices/${encodeURIComponent(v.id)}`, { method: "DELETE" });
        d.close();
        refresh();
      } catch (e) {
        err.show(e);
      }
    });
  }

  // The upload form: a file, or a recording from the microphone.
  const file = h("input", { type: "file", name: "file", accept: "audio/*" });
  const fallback = h("select", { name: "fallback_voice" });
  let recorded = null;
  let recording = null;
  const recordState = h("span", { class: "hint", "aria-live": "polite" });
  const recordButton = h("button", { type: "button", class: "secondary" }, "Record from the microphone");
  recordButton.addEventListener("click", async () => {
    alert.clear();
    try {
      if (!recording) {
        recording = await startRecording();
        recordButton.textContent = "Stop recording";
        recordState.textContent = "Recording…";
      } else {
        recorded = await recording.stop();
        recording = null;
        recordButton.textContent = "Record again";
        recordState.textContent = "Recorded: it is uploaded instead of a file.";
        file.value = "";
      }
    } catch (e) {
      recording = null;
      alert.show(`The microphone cannot record: ${e.message}`);
    }
  });
  file.addEventListener("change", () => {
    recorded = null;
    recordState.textContent = "";
  });

  const form = h(
    "form",
    { class: "card", "aria-labelledby": "clone-title" },
    h("h2", { id: "clone-title" }, "Clone a voice"),
    h("div", { class: "grid" },
      field("Name", h("input", { name: "name", required: true, maxlength: 200 })),
      field("Language", h("input", { name: "language", value: "en", required: true, maxlength: 16 }), "BCP-47, e.g. en or en-GB"),
      field("Fallback voice", fallback, "Spoken by engines that cannot clone"),
    ),
    field("Description", h("textarea", { name: "description", rows: 2, maxlength: 2000 })),
    field("Sample file", file, `WAV, FLAC, MP3 or OGG: ${config.voice_limits.min_seconds}–${config.voice_limits.max_seconds} s of one speaker, ${config.voice_limits.recommended_seconds} s or more recommended`),
    h("div", { class: "field inline" }, recordButton, recordState),
    h("div", { class: "check" }, h("input", { type: "checkbox", name: "consent", value: "true", id: "consent", required: true }),
      h("label", { for: "consent" }, "The speaker agreed to have their voice cloned")),
    h("button", { type: "submit" }, "Upload and analyse"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    alert.clear();
    result.replaceChildren();
    const body = new FormData(form);
    if (recorded) body.set("file", recorded, "recording.wav");
    else if (!file.files.length) {
      alert.show("Choose a sample file, or record one.");
      return;
    }
    if (!body.get("description")) body.delete("description");
    try {
      const voice = await call("/v1/voices", { method: "POST", form: body });
      result.replaceChildren(
        h("p", { class: "ok" }, `Cloned “${voice.name}” (${voice.id}), version ${voice.version}.`),
        analysisView(voice.analysis, config.voice_limits),
      );
      refresh();
    } catch (e) {
      result.replaceChildren(h("p", { class: "refused" }, h("strong", {}, "Refused: "), e.message));
    }
  });

  root.append(
    h("h1", {}, "Voices"),
    alert,
    list.wrap,
    h("div", { class: "player" }, player),
    form,
    result,
  );
  refresh();
  return () => player.pause();
}
