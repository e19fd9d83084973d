// The page's own text in the user's language: a small message catalogue, no build step.
//
// Each view module brings its strings with `addStrings({en: {...}, es: {...}, …})` (keys are
// namespaced by view, e.g. "tour.start"; every language of js/languages.js has every key, which
// tests/test_ui_catalogues.py checks); `t(key, vars)` looks one up in the current interface
// language, falls back to English, then to the key itself. Static markup uses `data-i18n="key"`
// (text), `data-i18n-placeholder`, `data-i18n-title` and `data-i18n-aria-label`, filled by
// `translatePage()`. Dates and numbers are formatted for the same language with `formatter()`.
// Right-to-left languages set `dir="rtl"` on the document.
// This module imports nothing: the catalogues and the pickers import it.

const RIGHT_TO_LEFT = new Set(["ar", "fa", "he", "ur"]);

const catalogue = { en: {} }; // language -> key -> text; a language with strings is offered
let current = "en";

/** Merge a view's strings into the catalogue (later calls win on the same key). */
export function addStrings(table) {
  for (const [lang, strings] of Object.entries(table)) {
    catalogue[lang] = { ...(catalogue[lang] || {}), ...strings };
  }
}

/** Use `lang` for the interface when we have it (else English); returns the language used. */
export function setUiLanguage(lang) {
  const base = String(lang || "en").toLowerCase().split(/[-_]/)[0];
  current = Object.hasOwn(catalogue, base) ? base : "en";
  document.documentElement.lang = current;
  document.documentElement.dir = RIGHT_TO_LEFT.has(current) ? "rtl" : "ltr";
  return current;
}

export function uiLanguage() {
  return current;
}

/** The text for `key` with `{name}` placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const template = catalogue[current]?.[key] ?? catalogue.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

const formatters = new Map(); // "language|kind|options" -> Intl formatter

/** An `Intl` formatter (`Intl.DateTimeFormat`, `Intl.NumberFormat`, …) with `options` for the
 * current interface language, made once per language and options. Ask for it when formatting,
 * never at module load, so dates and numbers follow a language switch. */
export function formatter(Kind, options = {}) {
  const key = `${current}|${Kind.name}|${JSON.stringify(options)}`;
  if (!formatters.has(key)) formatters.set(key, new Kind(current, options));
  return formatters.get(key);
}

/** A language's name in the interface language ("영어" for "en" in Korean); the code if the
 * browser cannot name it. */
export function languageName(code) {
  if (!code) return "";
  try {
    return formatter(Intl.DisplayNames, { type: "language", fallback: "none" }).of(code) || code;
  } catch {
    return code;
  }
}

/** Fill every `data-i18n*` element under `root` with the current language's text. */
export function translatePage(root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-placeholder]")) {
    node.placeholder = t(node.dataset.i18nPlaceholder);
  }
  for (const node of root.querySelectorAll("[data-i18n-title]")) node.title = t(node.dataset.i18nTitle);
  for (const node of root.querySelectorAll("[data-i18n-aria-label]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nAriaLabel));
  }
}
