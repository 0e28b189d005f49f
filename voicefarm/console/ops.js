// Ops, for admin keys: engines, the cache, and the last hour's failures and fallbacks. Each
// figure links to the Grafana panel it mirrors; a tenant key is shown the API's refusal.
import { call } from "./api.js";
import { alertBox, h, percent, seconds, table } from "./dom.js";

const POLL_MS = 5000;

export function render(root, { config }) {
  const alert = alertBox();
  const panel = (name) => `${config.grafana_dashboard}?viewPanel=${config.grafana_panels[name]}`;
  // A figure, linked to its panel; the link's name says what it is and where it goes.
  const fig = (value, name, what) => h("a", { href: panel(name), class: "figure", "aria-label": `${what}: ${value} (Grafana panel)` }, value);

  const engines = table("Engines", ["Engine", "State", "Live workers", "Queue depth", "Queued / running", "Mean real-time factor", "Mean synthesis", "Model", "Self-test failures"]);
  const recent = table("The last hour", ["Engine", "Attempts", "Failure rate", "Fallback rate"]);
  const cache = h("dl", { class: "facts" });
  const jobsHour = h("dl", { class: "facts" });
  const body = h("div", { hidden: true },
    h("h2", {}, "Engines"), engines.wrap,
    h("h2", {}, "The last hour"), jobsHour, recent.wrap,
    h("h2", {}, "Cache"), cache);

  let timer = 0;
  let stopped = false;
  async function poll() {
    try {
      const [es, rates, stats] = await Promise.all([call("/v1/engines"), call("/v1/rates"), call("/v1/cache/stats")]);
      alert.clear();
      body.hidden = false;
      engines.body.replaceChildren(...es.map((e) => h("tr", { "data-engine": e.name },
        h("th", { scope: "row" }, e.name),
        h("td", { class: e.status === "up" ? "status up" : "status down" }, e.status,
          e.degraded_until ? h("div", { class: "hint" }, `until ${new Date(e.degraded_until).toLocaleTimeString()}`) : null),
        h("td", {}, fig(String(e.live_workers), "live_workers", `${e.name} live workers`)),
        h("td", {}, fig(String(e.queue_depth), "queue_depth", `${e.name} queue depth`)),
        h("td", {}, `${e.jobs.queued ?? 0} / ${e.jobs.running ?? 0}`),
        h("td", {}, fig(e.mean_real_time_factor === null ? "—" : e.mean_real_time_factor.toFixed(3), "real_time_factor", `${e.name} mean real-time factor`)),
        h("td", {}, seconds(e.mean_synthesis_seconds)),
        h("td", {}, `${e.model_version}${e.device ? ` on ${e.device}` : ""}`),
        h("td", {}, Object.entries(e.self_test_failures).map(([host, why]) => h("div", {}, `${host}: ${why}`))),
      )));
      recent.body.replaceChildren(...Object.entries(rates.engines).map(([name, r]) => h("tr", {},
        h("th", { scope: "row" }, name),
        h("td", {}, String(r.attempts)),
        h("td", {}, fig(percent(r.failed / r.attempts), "failure_rate", `${name} failure rate`)),
        h("td", {}, fig(percent(r.fallbacks / r.attempts), "fallback_rate", `${name} fallback rate`)),
      )));
      jobsHour.replaceChildren(
        h("dt", {}, "Jobs finished"), h("dd", {}, String(rates.jobs_finished)),
        h("dt", {}, "Job failure rate"),
        h("dd", {}, fig(rates.jobs_finished ? percent(rates.jobs_failed / rates.jobs_finished) : "—", "job_failure_rate", "Job failure rate")),
      );
      const asked = stats.hits + stats.misses;
      cache.replaceChildren(
        h("dt", {}, "Hit ratio (this API process)"),
        h("dd", {}, fig(asked ? percent(stats.hits / asked) : "—", "cache_hit_ratio", "Cache hit ratio"), ` (${stats.hits} hits, ${stats.misses} misses)`),
        h("dt", {}, "Renditions"), h("dd", {}, String(stats.renditions)),
        h("dt", {}, "Audio stored"), h("dd", {}, `${(stats.audio_seconds / 60).toFixed(1)} min`),
        h("dt", {}, "Redis keys"), h("dd", {}, stats.redis_keys === null ? "no Redis" : String(stats.redis_keys)),
        h("dt", {}, "By engine"), h("dd", {}, Object.entries(stats.by_engine).map(([e, n]) => `${e}: ${n}`).join(", ") || "—"),
      );
    } catch (e) {
      body.hidden = true;
      alert.show(e);
      if (e.status === 401 || e.status === 403) return; // a key that may not see this: no point asking again
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }

  root.append(h("h1", {}, "Ops"), alert, body);
  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
