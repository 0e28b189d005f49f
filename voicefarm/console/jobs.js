// Jobs and batches: the tenant's latest, live. Rows are replaced only when they change, so
// keyboard focus on a row's button survives the polls.
import { blob, call } from "./api.js";
import { alertBox, h, table, time } from "./dom.js";

const POLL_MS = 1000;

function since(from, to) {
  return from && to ? `+${((new Date(to) - new Date(from)) / 1000).toFixed(2)} s` : "";
}

// Queued, started, finished: each step's time, and a bar of waiting and synthesis.
function timeline(t) {
  const end = t.finished || new Date().toISOString();
  const total = Math.max(new Date(end) - new Date(t.queued), 1);
  const waited = ((t.started ? new Date(t.started) : new Date(end)) - new Date(t.queued)) / total;
  return h(
    "div",
    { class: "timeline" },
    h("div", { class: "bar", "aria-hidden": "true" },
      h("span", { class: "wait", style: `width:${(waited * 100).toFixed(1)}%` }),
      h("span", { class: "run", style: `width:${t.started ? ((1 - waited) * 100).toFixed(1) : 0}%` })),
    h("ol", {},
      h("li", {}, `queued ${time(t.queued)}`),
      h("li", {}, t.started ? `started ${since(t.queued, t.started)}` : "not started"),
      h("li", {}, t.finished ? `finished ${since(t.queued, t.finished)}` : "not finished")),
  );
}

function segments(s) {
  if (!s) return "—";
  const id = `seg-${Math.random().toString(36).slice(2)}`;
  return h("div", {},
    h("progress", { value: s.done, max: s.total, "aria-labelledby": id }),
    h("span", { id }, ` ${s.done}/${s.total} segments (${s.cached} cached)`));
}

const ACTIVE = ["queued", "running"];

function cancelButton(what, id, active, onCancel) {
  return h("button", { type: "button", disabled: !active, onclick: () => onCancel(what, id) },
    "Cancel", h("span", { class: "visually-hidden" }, ` ${what} ${id.slice(0, 8)}`));
}

function jobRow(j, onCancel) {
  return h(
    "tr",
    { "data-job": j.id },
    h("td", {}, h("code", {}, j.id.slice(0, 8)), h("div", { class: "hint" }, j.format)),
    h("td", {}, j.voice || "—"),
    h("td", { class: `status ${j.status}` }, j.status),
    h("td", {}, j.engine || "—"),
    h("td", {}, j.attempts.length
      ? h("ol", { class: "attempts" }, j.attempts.map((a) => h("li", {}, `${a.engine}: ${a.outcome}${a.error ? ` (${a.error})` : ""}`)))
      : "none yet"),
    h("td", {}, timeline(j.timings)),
    h("td", {}, segments(j.segments)),
    h("td", {}, cancelButton("job", j.id, ACTIVE.includes(j.status), onCancel)),
  );
}

function batchRow(b, onManifest, onCancel) {
  const label = `batch-${b.id}`;
  return h(
    "tr",
    { "data-batch": b.id },
    h("td", {}, h("code", {}, b.id.slice(0, 8)), h("div", { class: "hint" }, time(b.created_at))),
    h("td", { class: `status ${b.status}` }, b.status),
    h("td", {},
      h("progress", { value: b.progress, max: 1, "aria-labelledby": label }),
      h("span", { id: label }, ` ${(b.progress * 100).toFixed(0)} % of ${b.total}`)),
    h("td", {}, `${b.counts.succeeded} succeeded, ${b.counts.failed} failed, ${b.counts.canceled} canceled, `
      + `${b.counts.running} running, ${b.counts.queued} queued`),
    h("td", {}, h("button", { type: "button", disabled: b.status !== "done", onclick: () => onManifest(b) },
      "Download manifest", h("span", { class: "visually-hidden" }, ` of batch ${b.id.slice(0, 8)}`))),
    h("td", {}, cancelButton("batch", b.id, b.status === "running", onCancel)),
  );
}

// Keeps `body` in the order of `items`, rebuilding a row only when its item changed.
function sync(body, items, build, seen) {
  const rows = items.map((item) => {
    const json = JSON.stringify(item);
    const old = seen.get(item.id);
    if (old && old.json === json) return old.row;
    const row = build(item);
    seen.set(item.id, { json, row });
    return row;
  });
  rows.forEach((row, i) => {
    if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
  });
  while (body.children.length > rows.length) body.lastElementChild.remove();
}

export function render(root) {
  const alert = alertBox();
  const jobs = table("Recent jobs", ["Job", "Voice", "Status", "Engine", "Attempts", "Timeline", "Segments", "Cancel"]);
  const batches = table("Recent batches", ["Batch", "Status", "Progress", "Items", "Manifest", "Cancel"]);
  const seenJobs = new Map();
  const seenBatches = new Map();
  const empty = h("p", { class: "hint" });

  async function manifest(b) {
    try {
      const url = URL.createObjectURL(await blob(`/v1/batches/${b.id}`));
      const link = h("a", { href: url, download: `manifest-${b.id}.json` });
      document.body.append(link);
      link.click();
      link.remove();
    } catch (e) {
      alert.show(e);
    }
  }

  // The next poll shows the outcome: canceled, or what the job had become first.
  async function cancel(what, id) {
    try {
      await call(`/v1/${what === "job" ? "jobs" : "batches"}/${id}/cancel`, { method: "POST" });
    } catch (e) {
      alert.show(e);
    }
  }

  let timer = 0;
  let stopped = false;
  async function poll() {
    try {
      const [j, b] = await Promise.all([call("/v1/jobs?limit=25"), call("/v1/batches?limit=10")]);
      alert.clear();
      sync(jobs.body, j, (x) => jobRow(x, cancel), seenJobs);
      sync(batches.body, b, (x) => batchRow(x, manifest, cancel), seenBatches);
      empty.textContent = j.length ? "" : "No jobs yet: submit one on Try it.";
    } catch (e) {
      alert.show(e);
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }

  root.append(
    h("h1", {}, "Jobs and batches"),
    alert,
    h("h2", {}, "Jobs"),
    empty,
    jobs.wrap,
    h("h2", {}, "Batches"),
    batches.wrap,
  );
  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
