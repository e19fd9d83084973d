// The signed-in browser: token and chosen language live in localStorage (kept across tabs and
// restarts until "Sign out"; no cookie). Dev sign-in ids are remembered per name, even after
// signing out, so signing in again with the same name is the same user. The language the page
// last spoke is kept after signing out too, for the sign-in page.

const TOKEN_KEY = "tradetalk.token";
const LANG_KEY = "tradetalk.lang";
const DEV_IDS_KEY = "tradetalk.dev_ids";
const INVITE_KEY = "tradetalk.pending_invite";
const PAGE_LANG_KEY = "tradetalk.page_lang";
const CALL_KEY = "tradetalk.call"; // the call this tab is in, so a reload joins it again

/** Claims of a JWT (its payload, the middle part; not verified: the server verifies), or null. */
export function decodeClaims(token) {
  try {
    const body = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = body + "=".repeat((4 - (body.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof claims.sub !== "string" || typeof claims.exp !== "number") return null;
    return claims;
  } catch {
    return null;
  }
}

/** Take a token given as `#token=...` in the URL, remove it from the address bar, return it. */
export function takeTokenFromFragment() {
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (!match) return null;
  history.replaceState(null, "", location.pathname + location.search);
  return decodeURIComponent(match[1]);
}

/** Take an invite given as `#invite=USERID` (kept until signed in), or a pending one. */
export function takeInvite() {
  const match = /^#invite=([A-Za-z0-9][A-Za-z0-9_.@-]{0,63})$/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(INVITE_KEY, match[1]);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(INVITE_KEY);
}

export function clearInvite() {
  sessionStorage.removeItem(INVITE_KEY);
}

/** The link that opens a conversation with `userId` for whoever follows it. */
export function inviteLink(userId) {
  return `${location.origin}${location.pathname}#invite=${encodeURIComponent(userId)}`;
}

export function savedToken() {
  return localStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {
  localStorage.setItem(TOKEN_KEY, token);
}

export function savedLanguage() {
  return localStorage.getItem(LANG_KEY);
}

export function saveLanguage(lang) {
  localStorage.setItem(LANG_KEY, lang);
}

/** The interface language this browser last used (kept after sign-out), or null. */
export function pageLanguage() {
  return localStorage.getItem(PAGE_LANG_KEY);
}

export function savePageLanguage(lang) {
  localStorage.setItem(PAGE_LANG_KEY, lang);
}

export function forgetLanguage() {
  localStorage.removeItem(LANG_KEY);
}

/** The id this browser was given before for a dev sign-in `name` (or null). */
export function devIdFor(name) {
  try {
    return JSON.parse(localStorage.getItem(DEV_IDS_KEY) || "{}")[name] || null;
  } catch {
    return null;
  }
}

export function rememberDevId(name, id) {
  let ids = {};
  try {
    ids = JSON.parse(localStorage.getItem(DEV_IDS_KEY) || "{}");
  } catch {
    ids = {};
  }
  ids[name] = id;
  localStorage.setItem(DEV_IDS_KEY, JSON.stringify(ids));
}

/** Remember the call this tab joined (sessionStorage: this tab only, kept over a reload). */
export function saveCall(call) {
  sessionStorage.setItem(CALL_KEY, JSON.stringify({ id: call.id, conversation_id: call.conversation_id }));
}

/** The call this tab was in before a reload, or null. */
export function savedCall() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(CALL_KEY) || "null");
    return saved && typeof saved.id === "string" && typeof saved.conversation_id === "string" ? saved : null;
  } catch {
    return null;
  }
}

export function forgetCall() {
  sessionStorage.removeItem(CALL_KEY);
}

/** Forget the signed-in user (token, language, this tab's queued state); dev ids stay. */
export function clearSession() {
  localStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(LANG_KEY);
  for (const key of Object.keys(sessionStorage)) {
    if (key.startsWith("tradetalk.") && key !== INVITE_KEY) sessionStorage.removeItem(key);
  }
}

/** The user described by a token, or null if it is unreadable or expired. */
export function userFromToken(token) {
  const claims = token ? decodeClaims(token) : null;
  if (!claims || claims.exp * 1000 <= Date.now()) return null;
  return { id: claims.sub, name: claims.name, role: claims.role, lang: claims.lang };
}
