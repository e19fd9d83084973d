// The page's own text in the user's language: a small message catalogue, no build step.
//
// Each view module brings its strings with `addStrings({en: {...}, es: {...}, zh: {...}, ko: {...}})`
// (keys are namespaced by view, e.g. "tour.start"); `t(key, vars)` looks one up in the current
// interface language, falls back to English, then to the key itself. Static markup uses
// `data-i18n="key"` (text), `data-i18n-placeholder`, `data-i18n-title`, filled by `translatePage()`.

export const UI_LANGUAGES = ["en", "es", "zh", "ko"];

const catalogue = { en: {}, es: {}, zh: {}, ko: {} };
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
  current = UI_LANGUAGES.includes(base) ? base : "en";
  document.documentElement.lang = current;
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

/** Fill every `data-i18n*` element under `root` with the current language's text. */
export function translatePage(root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-placeholder]")) {
    node.placeholder = t(node.dataset.i18nPlaceholder);
  }
  for (const node of root.querySelectorAll("[data-i18n-title]")) node.title = t(node.dataset.i18nTitle);
}
