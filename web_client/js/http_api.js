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

/** A dev-mode token for a new user: `{token, user}`; throws Error(message) on refusal. */
export async function devToken(name, role, lang) {
  const response = await fetch("/api/dev/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name, role, lang }),
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
