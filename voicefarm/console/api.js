// The console is only an API client: every data call goes through here, with the key the
// visitor pasted, kept in sessionStorage (gone with the tab) and nowhere else.
const KEY = "voicefarm.apiKey";

export const session = {
  get key() {
    return sessionStorage.getItem(KEY);
  },
  signIn(key) {
    sessionStorage.setItem(KEY, key);
  },
  signOut() {
    sessionStorage.removeItem(KEY);
  },
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The API's own message ({"error": ...}); a body that has none is shown as it came.
async function problem(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (typeof body.error === "string") return body.error;
  } catch {
    // not JSON: fall through to the raw text
  }
  return `${response.status} ${response.statusText}${text ? `: ${text.slice(0, 300)}` : ""}`;
}

// A call to the API: its JSON, or the Response itself with `raw`. Errors carry the API's message.
export async function call(path, { method = "GET", json, form, raw = false, signal } = {}) {
  const headers = session.key ? { "X-API-Key": session.key } : {};
  let body = form;
  if (json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, signal });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, `the API could not be reached: ${e.message}`);
  }
  if (!response.ok) throw new ApiError(response.status, await problem(response));
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

export async function blob(path) {
  return (await call(path, { raw: true })).blob();
}
