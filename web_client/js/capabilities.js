// What this server can do per language (GET /api/capabilities, docs/protocol.md "HTTP"): marks in
// the language pickers. "🎙" — speech in this language is subtitled; "⇄N" — text in it is
// translated to and from N other languages here (directly or through English). A legend under
// the picker says so in the interface language (js/strings/capabilities.js).
import { t } from "./i18n.js";
import "./strings/capabilities.js";

let request = null;

/** The server's capability document, fetched once per page (null when it can't be had; the next
 * call tries again). */
export async function serverCapabilities() {
  request ??= fetch("/api/capabilities")
    .then((response) => (response.ok ? response.json() : null))
    .catch(() => null);
  const document = await request;
  if (!document) request = null;
  return document;
}

/** `{speech: engine or null, both: [codes translated to and from `code`]}` for one language. */
export function languageCapability(caps, code) {
  const routes = caps?.translation || {};
  const both = Object.keys(routes[code] || {}).filter((other) => routes[other]?.[code]);
  return { speech: caps?.speech?.[code] || null, both: both.sort() };
}

/** The marks shown after a language's name: "🎙 ⇄2", or "" when it has neither. */
export function capabilityMarks(caps, code) {
  const { speech, both } = languageCapability(caps, code);
  return [speech ? "🎙" : "", both.length ? `⇄${both.length}` : ""].filter(Boolean).join(" ");
}

/** Add the marks to every option of a language <select> (idempotent) and the legend: a line
 * after its label, or the select's tooltip in a compact (`label.inline`) picker. */
export async function markLanguageSelect(select) {
  const caps = await serverCapabilities();
  if (!caps || !select.isConnected) return;
  for (const option of select.options) {
    option.dataset.label ??= option.textContent;
    const marks = capabilityMarks(caps, option.value);
    option.textContent = marks ? `${option.dataset.label} ${marks}` : option.dataset.label;
    const { speech, both } = languageCapability(caps, option.value);
    option.dataset.speech = speech || "";
    option.dataset.translates = both.join(" ");
  }
  const label = select.closest("label");
  if (label?.classList.contains("inline")) {
    select.dataset.i18nTitle = "caps.legend"; // a compact picker (the top bar): a tooltip
    select.title = t("caps.legend");
    return;
  }
  const id = `${select.id || "lang"}-caps-legend`;
  if (!document.getElementById(id)) {
    const legend = document.createElement("p");
    legend.id = id;
    legend.className = "hint caps-legend";
    legend.dataset.i18n = "caps.legend";
    legend.textContent = t("caps.legend");
    (label || select).after(legend);
  }
}
