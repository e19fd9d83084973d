// Languages offered in the pickers (codes the server accepts; translation depends on its engines,
// which js/capabilities.js marks in each picker).
import { markLanguageSelect } from "./capabilities.js";

export const LANGUAGES = [
  ["en", "English"], ["es", "Español"], ["zh", "中文"], ["fr", "Français"], ["de", "Deutsch"],
  ["pt", "Português"], ["it", "Italiano"], ["ru", "Русский"], ["ar", "العربية"], ["tr", "Türkçe"],
  ["ja", "日本語"], ["ko", "한국어"], ["vi", "Tiếng Việt"], ["hi", "हिन्दी"], ["id", "Bahasa Indonesia"],
];

/** Fill a <select> with the languages (plus `current` if it's not among them) and select `current`. */
export function fillLanguageSelect(select, current) {
  select.replaceChildren();
  const codes = new Set(LANGUAGES.map(([code]) => code));
  const entries = codes.has(current) || !current ? LANGUAGES : [...LANGUAGES, [current, current]];
  for (const [code, label] of entries) {
    const option = document.createElement("option");
    option.value = code;
    option.textContent = `${label} (${code})`;
    select.append(option);
  }
  select.value = current || "en";
  markLanguageSelect(select);
}
