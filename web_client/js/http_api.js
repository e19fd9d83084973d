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

/** Fetch `url` with the token and save the body as `filename`; throws Error on refusal. */
export async function saveDownload(token, url, filename) {
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${(await response.text()).slice(0, 200)}`);
  const blob = await response.blob();
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
