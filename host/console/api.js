// The console's only way to the host: the public HTTP API, same origin. The access and refresh
// tokens live in this module's memory only (not in storage a script of another page could read,
// and not in a cookie, so there is nothing for another site to ride on); a reload logs out.
// An expired access token is renewed once through the rotating refresh token, shared by every
// call that meets the 401 at the same moment (a second refresh would present a revoked token,
// which the host treats as theft and answers by ending the session).

let session = null; // { access, refresh, me }
let refreshing = null;
const projectKeys = new Map(); // project id -> an API key made or pasted in this page

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const me = () => session?.me ?? null;
export const loggedIn = () => session !== null;

export async function login(username, password) {
  const tokens = await call("POST", "/auth/login", { body: { username, password }, auth: false });
  session = { access: tokens.access_token, refresh: tokens.refresh_token, me: null };
  session.me = await api("GET", "/auth/me");
  return session.me;
}

export async function logout() {
  const refresh = session?.refresh;
  session = null;
  projectKeys.clear();
  if (refresh) await call("POST", "/auth/logout", { body: { refresh_token: refresh }, auth: false }).catch(() => {});
}

/** Called when the session ends by itself (refresh refused): the app shows the login form. */
let onSessionLost = () => {};
export function whenSessionLost(f) {
  onSessionLost = f;
}

/** `api("GET", "/projects")`: JSON in, JSON out, the access token renewed when it expired. */
export async function api(method, path, options = {}) {
  try {
    return await call(method, path, options);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401 || !session || options.auth === false) throw e;
    await renew();
    return call(method, path, options);
  }
}

async function renew() {
  refreshing ||= (async () => {
    try {
      const tokens = await call("POST", "/auth/refresh", { body: { refresh_token: session.refresh }, auth: false });
      session.access = tokens.access_token;
      session.refresh = tokens.refresh_token;
    } catch (e) {
      session = null;
      projectKeys.clear();
      onSessionLost();
      throw new ApiError(401, "unauthorized", "Your session has ended: log in again");
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

async function call(method, path, { body, form, key, auth = true, query } = {}) {
  const headers = { Accept: "application/json" };
  if (auth && session) headers.Authorization = `Bearer ${session.access}`;
  if (key) {
    headers["X-API-Key"] = key;
    delete headers.Authorization;
  }
  let payload;
  if (form) payload = form;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  const response = await fetch(url, { method, headers, body: payload, credentials: "omit" });
  if (response.status === 204) return null;
  const text = await response.text();
  const data = text ? safeJson(text) : null;
  if (!response.ok) {
    const err = data?.error;
    throw new ApiError(response.status, err?.code ?? "error", err?.message ?? `${method} ${path}: ${response.status}`);
  }
  return data;
}

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** A key of `projectId` this page knows (made here, or pasted), for uploads. */
export const keyOf = (projectId) => projectKeys.get(projectId) ?? null;
export function rememberKey(projectId, key) {
  projectKeys.set(projectId, key);
}
export function forgetKey(projectId) {
  projectKeys.delete(projectId);
}
export function forgetKeyIfPrefix(projectId, prefix) {
  const key = projectKeys.get(projectId);
  // Keys read `mbk_{prefix}_{secret}`.
  if (key && key.split("_")[1] === prefix) projectKeys.delete(projectId);
}
