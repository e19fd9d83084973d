// How a message reads for one reader: their language when a translation exists.
import { formatter } from "./i18n.js";

/**
 * `{text, lang, translated, missing}` for a reader of `lang`: the translation into `lang` if the
 * server made one, else the original (`missing` when the message was in another language, with
 * the server's `note` from `translation_error` when it gave one: see js/translation_notes.js).
 */
export function readable(message, lang) {
  if (!message) return null;
  if (!lang || message.lang === lang) {
    return { text: message.text, lang: message.lang, translated: false, missing: false };
  }
  const translation = message.translations && message.translations[lang];
  if (typeof translation === "string" && translation) {
    return { text: translation, lang, translated: true, missing: false };
  }
  const note = message.translation_error?.[lang] || null;
  return { text: message.text, lang: message.lang, translated: false, missing: true, note };
}

const TIME = { hour: "2-digit", minute: "2-digit" };
const DAY_AND_TIME = { month: "short", day: "numeric", ...TIME };

/** A short local time in the interface language ("14:05", "오전 07:44"), with the date when it's
 * not today ("Dec 1, 07:44 AM", "12월 1일 오전 07:44"). */
export function shortTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const today = new Date().toDateString() === date.toDateString();
  return formatter(Intl.DateTimeFormat, today ? TIME : DAY_AND_TIME).format(date);
}
