// Sign-in and the pages: a hash route per page (#voices, #try, #jobs, #ops). Each page's
// render() returns a function that stops what it left running (polls, playback).
import { call, session } from "./api.js";
import { alertBox, field, h } from "./dom.js";
import * as jobs from "./jobs.js";
import * as ops from "./ops.js";
import * as tryIt from "./try.js";
import * as voices from "./voices.js";

const PAGES = { voices, try: tryIt, jobs, ops };
const main = document.getElementById("page");
let stop = null;
let config = null;
let routing = 0; // which call of route() is the latest

function signInForm(message) {
  const key = h("input", { type: "password", name: "key", autocomplete: "off", required: true, spellcheck: "false" });
  const alert = alertBox();
  const form = h(
    "form",
    { class: "card sign-in", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    h("p", {}, "Paste an API key (voicefarm keys create). It stays in this tab only, and is sent with every call."),
    field("API key", key),
    h("button", { type: "submit" }, "Sign in"),
    alert,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    alert.clear();
    session.signIn(key.value.trim());
    try {
      await whoAmI();
      route();
    } catch (e) {
      session.signOut();
      alert.show(e);
    }
  });
  if (message) alert.show(message);
  main.replaceChildren(form);
  key.focus();
}

async function whoAmI() {
  const tenant = await call("/v1/tenant");
  document.getElementById("tenant").textContent = `Tenant ${tenant.id}`;
  document.querySelector("nav").hidden = false;
  document.querySelector(".who").hidden = false;
}

async function route() {
  const mine = ++routing;
  if (stop) stop();
  stop = null;
  if (!session.key) {
    document.querySelector("nav").hidden = true;
    document.querySelector(".who").hidden = true;
    signInForm();
    return;
  }
  config ||= await (await fetch("/console/config.json")).json();
  // A navigation while the config loaded (a hash change just after signing in) routes again; only
  // the latest renders, or a second render would replace a form the user has begun to fill.
  if (mine !== routing) return;
  const [name, query] = location.hash.slice(1).split("?");
  const page = PAGES[name] ? name : "voices";
  for (const link of document.querySelectorAll("nav a")) {
    if (link.getAttribute("href") === `#${page}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  main.replaceChildren();
  stop = PAGES[page].render(main, { config, params: new URLSearchParams(query) });
  const heading = main.querySelector("h1");
  document.title = `${heading ? heading.textContent : page} · voicefarm console`;
}

document.getElementById("sign-out").addEventListener("click", () => {
  session.signOut();
  location.hash = "";
  route();
});
window.addEventListener("hashchange", () => {
  route();
  main.focus(); // a keyboard or screen reader lands on the new page, not on the old link
});

if (session.key) {
  whoAmI()
    .then(route)
    .catch((e) => {
      session.signOut();
      signInForm(e);
    });
} else {
  route();
}
