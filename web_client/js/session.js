// The signed-in tab: token and chosen language live in sessionStorage (this tab only, no cookie).

const TOKEN_KEY = "tradetalk.token";
const LANG_KEY = "tradetalk.lang";

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

export function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function savedLanguage() {
  return sessionStorage.getItem(LANG_KEY);
}

export function saveLanguage(lang) {
  sessionStorage.setItem(LANG_KEY, lang);
}

/** Forget everything this tab stored. */
export function clearSession() {
  for (const key of Object.keys(sessionStorage)) {
    if (key.startsWith("tradetalk.")) sessionStorage.removeItem(key);
  }
}

/** The user described by a token, or null if it is unreadable or expired. */
export function userFromToken(token) {
  const claims = token ? decodeClaims(token) : null;
  if (!claims || claims.exp * 1000 <= Date.now()) return null;
  return { id: claims.sub, name: claims.name, role: claims.role, lang: claims.lang };
}
