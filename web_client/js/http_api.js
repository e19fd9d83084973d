// Plain HTTP calls made before the socket exists.

/** `{dev: bool}`: whether the server offers the development sign-in. */
export async function clientConfig() {
  try {
    const response = await fetch("/api/client-config");
    return response.ok ? await response.json() : { dev: false };
  } catch {
    return { dev: false };
  }
}

/** A dev-mode token (for `userId` when given: a returning browser): `{token, user}`; throws
 * Error(message) on refusal. */
export async function devToken(name, role, lang, userId = null) {
  const response = await fetch("/api/dev/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(userId ? { name, role, lang, user_id: userId } : { name, role, lang }),
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok || !body || !body.token) {
    throw new Error(body?.error?.message || `sign-in failed (HTTP ${response.status})`);
  }
  return body;
}

/** Fetch a conversation's call transcript (`format`: txt, srt or json) and save it as a file. */
export async function downloadTranscript(token, conversationId, format = "srt") {
  const url = `/api/conversations/${encodeURIComponent(conversationId)}/transcript?format=${format}`;
  await saveDownload(token, url, `transcript-${conversationId}.${format}`);
}

/** HTTP refusals as the Socket.IO codes of docs/protocol.md, so the reader's note words them. */
const HTTP_CODES = { 401: "unauthorized", 403: "forbidden", 404: "not_found", 429: "rate_limited", 503: "unavailable" };

/** Fetch `url` with the token: the response, or an Error with a `code` (`not_found`,
 * `forbidden`, …, `disconnected` when the server could not be reached). */
export async function fetchWithToken(token, url) {
  let response;
  try {
    response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  } catch (error) {
    throw Object.assign(new Error(String(error)), { code: "disconnected" });
  }
  if (!response.ok) {
    const error = new Error(`HTTP ${response.status}: ${(await response.text()).slice(0, 200)}`);
    throw Object.assign(error, { code: HTTP_CODES[response.status] || `http_${response.status}` });
  }
  return response;
}

/** Fetch `url` with the token and save the body as `filename`; throws `fetchWithToken`'s errors. */
export async function saveDownload(token, url, filename) {
  const blob = await (await fetchWithToken(token, url)).blob();
  const href = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = href;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10000);
}
