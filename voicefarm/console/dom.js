// A few helpers to build the pages from plain DOM, without a framework.

// An element: attributes (on* are listeners; value, checked and disabled are properties),
// then children (strings, nodes, arrays; null and false are skipped).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "value" || name === "checked" || name === "disabled") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

let ids = 0;
export function uid(prefix) {
  ids += 1;
  return `${prefix}-${ids}`;
}

// A labelled control: <label for> and the control, in one wrapper.
export function field(label, control, hint) {
  control.id ||= uid("field");
  const hintEl = hint ? h("span", { class: "hint", id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control, hintEl);
}

// Where a page shows what went wrong: the API's message, read out when it appears.
export function alertBox() {
  const box = h("div", { class: "alert", role: "alert", hidden: true });
  box.show = (e) => {
    box.textContent = e instanceof Error ? e.message : String(e);
    box.hidden = false;
  };
  box.clear = () => {
    box.textContent = "";
    box.hidden = true;
  };
  return box;
}

// A table in a scrolling region, so a phone can read it sideways; the region takes focus, so
// a keyboard can scroll it too.
export function table(label, headings) {
  const body = h("tbody");
  const wrap = h(
    "div",
    { class: "scroll", role: "region", "aria-label": label, tabindex: 0 },
    h("table", {}, h("caption", { class: "visually-hidden" }, label),
      h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))), body),
  );
  return { wrap, body };
}

export function seconds(value, digits = 2) {
  return value === null || value === undefined ? "—" : `${value.toFixed(digits)} s`;
}

export function time(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "—";
}

export function percent(value) {
  return value === null || value === undefined || Number.isNaN(value) ? "—" : `${(value * 100).toFixed(1)} %`;
}
