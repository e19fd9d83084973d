// Why a request failed, in the reader's words (never the server's English message).

import { t } from "./i18n.js";

/** Why a request failed: a thing that is gone, a refusal, no connection, else the refusal's
 * code (docs/protocol.md; HTTP refusals carry the same codes: `http_api.fetchWithToken`) or the
 * browser's error name. */
export function failureReason(error) {
  const code = typeof error?.code === "string" ? error.code : "";
  if (code === "not_found") return t("reason.gone");
  if (code === "forbidden") return t("reason.forbidden");
  if (["timeout", "disconnected", "unavailable", "node_unavailable"].includes(code)) return t("reason.offline");
  return t("reason.other", { code: code || error?.name || "?" });
}
