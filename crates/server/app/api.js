// The API client of the dashboard. The tokens live in this module's memory and nowhere
// else: not in the browser's storage, not in a cookie. A script injected into the page can't
// read a storage it isn't in, and with no cookie the browser sends no credential on its
// own, so no other site can forge a request (CSRF). The cost: a reload signs out.

let session = null; // {access, refresh, user}
let refreshing = null;
let refreshTimer = 0;
const listeners = new Set();

/** A failed API call: the problem document the server answered with. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `The server answered ${status}.`);
    this.status = status;
    this.problem = problem || {};
  }
  /** The request field the problem names (`custom_alias`, …), if any. */
  get field() {
    return this.problem.field || null;
  }
}

/** Calls `fn(user)` whenever someone signs in (a user) or out (null). */
export function onSession(fn) {
  listeners.add(fn);
}

/** The signed-in user, or null. */
export function user() {
  return session?.user || null;
}

function emit() {
  for (const fn of listeners) fn(user());
}

async function send(method, path, { body, type, auth = true } = {}) {
  const headers = { Accept: "application/json" };
  if (auth && session) headers.Authorization = `Bearer ${session.access}`;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = type || "application/json";
    payload = type ? body : JSON.stringify(body);
  }
  return fetch(path, { method, headers, body: payload, credentials: "omit", cache: "no-store" });
}

/** A request; resolves to the `Response` when it succeeded, throws `ApiError` otherwise. */
export async function request(method, path, options = {}) {
  let res;
  try {
    res = await send(method, path, options);
    if (res.status === 401 && options.auth !== false && session && (await refresh())) {
      res = await send(method, path, options);
    }
  } catch (e) {
    throw new ApiError(0, { detail: "The server can't be reached. Check your connection and try again." });
  }
  if (res.ok) return res;
  let problem = null;
  try {
    problem = await res.json();
  } catch {
    problem = null;
  }
  if (res.status === 401 && options.auth !== false && session) {
    forget();
    emit();
  }
  throw new ApiError(res.status, problem);
}

/** A request whose answer is JSON (null for 204). */
export async function json(method, path, options) {
  const res = await request(method, path, options);
  return res.status === 204 ? null : res.json();
}

/** `path` with the query parameters of `params` that are set. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

function keep(tokens) {
  session = { ...(session || {}), access: tokens.access_token, refresh: tokens.refresh_token };
  clearTimeout(refreshTimer);
  // Renew a little before the access token runs out, so a page left open keeps working.
  const wait = Math.max(5, tokens.expires_in - 30) * 1000;
  refreshTimer = setTimeout(() => refresh(), wait);
}

function forget() {
  clearTimeout(refreshTimer);
  session = null;
}

async function refresh() {
  if (!session?.refresh) return false;
  if (!refreshing) {
    const token = session.refresh;
    refreshing = send("POST", "/api/v1/auth/refresh", { body: { refresh_token: token }, auth: false })
      .then(async (res) => {
        if (!res.ok) return false;
        keep(await res.json());
        return true;
      })
      .catch(() => false)
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

/** Signs in with an email and a password. */
export async function signIn(email, password) {
  const tokens = await json("POST", "/api/v1/auth/login", { body: { email, password }, auth: false });
  keep(tokens);
  try {
    session.user = await json("GET", "/api/v1/auth/me");
  } catch (e) {
    forget();
    throw e;
  }
  emit();
}

/** Creates an account, then signs in with it. */
export async function register(email, password, fullName) {
  const body = { email, password };
  if (fullName) body.full_name = fullName;
  await json("POST", "/api/v1/auth/register", { body, auth: false });
  await signIn(email, password);
}

/** Signs out: the refresh token dies on the server, the tokens leave memory. */
export async function signOut() {
  const token = session?.refresh;
  forget();
  emit();
  if (token) {
    await send("POST", "/api/v1/auth/logout", { body: { refresh_token: token }, auth: false }).catch(() => {});
  }
}

/** Fetches a file the API makes (CSV, image) as a Blob. */
export async function blob(path) {
  const res = await request("GET", path);
  return res.blob();
}
