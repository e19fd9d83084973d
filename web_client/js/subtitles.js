// Live subtitles over the call's video: one dimmed partial line per speaker while they talk,
// then the final line in the viewer's language (the original on hover). Text only, never HTML.
import { el } from "./dom.js";

const FINALS_KEPT = 3;
const PARTIAL_STALE_MS = 8000;

/**
 * `{text, lang, translated, missing?}`: a final subtitle as read in `lang` (the original if no
 * translation; `missing` then says why). Reads calls' `translations` map and tours' single
 * `translation` for `target_lang`; `translation_error` is a map per language or one string.
 */
export function subtitleFor(subtitle, lang) {
  if (subtitle.lang === lang) return { text: subtitle.text, lang, translated: false };
  let translation = subtitle.translations?.[lang];
  if (translation === undefined && subtitle.target_lang === lang) translation = subtitle.translation;
  if (typeof translation === "string" && translation) return { text: translation, lang, translated: true };
  const errors = subtitle.translation_error;
  const why = (typeof errors === "string" ? errors : errors?.[lang]) || "";
  return { text: subtitle.text, lang: subtitle.lang, translated: false, missing: `${subtitle.lang}→${lang}`, why };
}

/** The default short "not translated" note (views with their own interface text pass theirs);
 * the engine's full reason is the note's tooltip. */
const englishNote = (pair) => `not translated: ${pair}`;

export class SubtitleBoard {
  /** `untranslatedNote(pair)`: the note under a line left in its original ("ko→fr"). */
  constructor({ untranslatedNote = englishNote } = {}) {
    this.untranslatedNote = untranslatedNote;
    this.finals = el("ol", { className: "subtitle-finals" });
    this.partials = el("div", { className: "subtitle-partials" });
    this.node = el(
      "div",
      { className: "subtitles", attrs: { "aria-live": "polite", "aria-label": "Live subtitles" } },
      this.finals,
      this.partials,
    );
    this.timers = new Map(); // speaker id -> timer clearing a stale partial
  }

  /** Show a `subtitle` event for a viewer reading `lang` (`mine`: the viewer spoke it). */
  show(subtitle, lang, mine) {
    const speaker = subtitle.speaker || { id: "?", name: "?" };
    if (!subtitle.final) {
      this.partial(speaker, subtitle.text, subtitle.lang);
      return;
    }
    this.dropPartial(speaker.id);
    const shown = subtitleFor(subtitle, lang);
    const line = el(
      "li",
      {
        className: `subtitle final${shown.translated ? " translated" : ""}${mine ? " mine" : ""}`,
        title: shown.translated ? subtitle.text : "",
        dataset: { speaker: speaker.id, lang: shown.lang },
      },
      el("span", { className: "subtitle-speaker", text: `${mine ? "You" : speaker.name}: ` }),
      el("span", { className: "subtitle-text", text: shown.text, attrs: { lang: shown.lang } }),
      shown.missing
        ? el("span", { className: "subtitle-note", text: this.untranslatedNote(shown.missing), title: shown.why })
        : null,
    );
    // The original for tests and assistive tech; shown on hover through the title attribute.
    line.dataset.original = subtitle.text;
    line.dataset.originalLang = subtitle.lang;
    this.finals.append(line);
    while (this.finals.children.length > FINALS_KEPT) this.finals.firstElementChild.remove();
  }

  partial(speaker, text, lang) {
    let line = this.partials.querySelector(`[data-speaker="${CSS.escape(speaker.id)}"]`);
    if (!line) {
      line = el(
        "p",
        { className: "subtitle partial", dataset: { speaker: speaker.id } },
        el("span", { className: "subtitle-speaker", text: `${speaker.name}: ` }),
        el("span", { className: "subtitle-text" }),
      );
      this.partials.append(line);
    }
    const textNode = line.querySelector(".subtitle-text");
    textNode.textContent = text;
    textNode.setAttribute("lang", lang);
    clearTimeout(this.timers.get(speaker.id));
    this.timers.set(speaker.id, setTimeout(() => this.dropPartial(speaker.id), PARTIAL_STALE_MS));
  }

  dropPartial(speakerId) {
    clearTimeout(this.timers.get(speakerId));
    this.timers.delete(speakerId);
    this.partials.querySelector(`[data-speaker="${CSS.escape(speakerId)}"]`)?.remove();
  }

  clear() {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.finals.replaceChildren();
    this.partials.replaceChildren();
  }
}
