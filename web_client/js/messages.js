// How a message reads for one reader: their language when a translation exists.
import { uiLanguage } from "./i18n.js";

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

const formats = new Map(); // interface language -> {time, date}

/** The time and date formats of the interface language (an Arabic reader reads "07:42 ص", not
 * the browser's "07:42 AM", which an RTL line would even turn into "AM 07:42"). */
function formatsOf(lang) {
  if (!formats.has(lang)) {
    formats.set(lang, {
      time: new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" }),
      date: new Intl.DateTimeFormat(lang, { month: "short", day: "numeric" }),
    });
  }
  return formats.get(lang);
}

/** A short local time ("14:05"), with the date when it's not today, in the interface language. */
export function shortTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const { time, date: day } = formatsOf(uiLanguage());
  const today = new Date().toDateString() === date.toDateString();
  return today ? time.format(date) : `${day.format(date)} ${time.format(date)}`;
}
