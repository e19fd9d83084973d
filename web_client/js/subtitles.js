// Live subtitles over the call's video: one dimmed partial line per speaker while they talk,
// then at most two final lines in the viewer's language (the original on hover). Older finals
// move to a scrollable panel below the video. A final that could not be translated into the
// viewer's language shows the original plus a short note in the viewer's language (why, from
// the server's note: js/translation_notes.js). Text only.
import { el } from "./dom.js";
import { t } from "./i18n.js";
import "./strings/call.js";
import { untranslatedText } from "./translation_notes.js";

const FINALS_OVER_VIDEO = 2;
const HISTORY_KEPT = 200;
const PARTIAL_STALE_MS = 8000;

/**
 * `{text, lang, translated, note, missing}`: a final subtitle as read in `lang` (the original if
 * no translation; `missing` is then the pair, e.g. "ko→en", and `note` the server's note
 * `{code, from, to}` when it said why — none for a line said before `lang` was chosen). Reads
 * calls' `translations` map and tours' single `translation` for `target_lang`;
 * `translation_error` is a map of notes per language (calls) or one note for `target_lang` (tours).
 */
export function subtitleFor(subtitle, lang) {
  if (subtitle.lang === lang) return { text: subtitle.text, lang, translated: false, note: null };
  let translation = subtitle.translations?.[lang];
  if (translation === undefined && subtitle.target_lang === lang) translation = subtitle.translation;
  if (typeof translation === "string" && translation) {
    return { text: translation, lang, translated: true, note: null };
  }
  const errors = subtitle.translation_error;
  const single = subtitle.target_lang !== undefined && typeof errors?.code === "string";
  const note = (single ? (subtitle.target_lang === lang ? errors : null) : errors?.[lang]) || null;
  return {
    text: subtitle.text,
    lang: subtitle.lang,
    translated: false,
    note,
    missing: `${subtitle.lang}→${lang}`,
  };
}

export class SubtitleBoard {
  constructor() {
    this.finals = el("ol", { className: "subtitle-finals" });
    this.partials = el("div", { className: "subtitle-partials" });
    this.node = el(
      "div",
      { className: "subtitles", attrs: { "aria-live": "polite", "aria-label": t("subtitle.live") } },
      this.finals,
      this.partials,
    );
    this.historyList = el("ol", { className: "subtitle-history-list" });
    this.historyTitle = el("h3", { className: "subtitle-history-title" });
    this.history = el(
      "section",
      { className: "subtitle-history", attrs: { "aria-label": t("subtitle.earlier") } },
      this.historyTitle,
      this.historyList,
    );
    this.history.hidden = true;
    this.lines = []; // {subtitle, mine}, oldest first
    this.lang = "en";
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
    this.lang = lang;
    this.lines.push({ subtitle, mine });
    if (this.lines.length > HISTORY_KEPT + FINALS_OVER_VIDEO) this.lines.shift();
    this.render();
  }

  /** Read every line (shown and earlier) in `lang` from now on. */
  setLanguage(lang) {
    this.lang = lang;
    this.render();
  }

  render() {
    const recent = this.lines.slice(-FINALS_OVER_VIDEO);
    const older = this.lines.slice(0, -FINALS_OVER_VIDEO);
    this.finals.replaceChildren(...recent.map(({ subtitle, mine }) => this.line(subtitle, mine)));
    const nearEnd =
      this.historyList.scrollHeight - this.historyList.scrollTop - this.historyList.clientHeight < 40;
    this.historyList.replaceChildren(...older.map(({ subtitle, mine }) => this.line(subtitle, mine)));
    this.historyTitle.textContent = t("call.history");
    this.history.hidden = older.length === 0;
    if (nearEnd) this.historyList.scrollTop = this.historyList.scrollHeight;
  }

  line(subtitle, mine) {
    const speaker = subtitle.speaker || { id: "?", name: "?" };
    const shown = subtitleFor(subtitle, this.lang);
    const missing = !shown.translated && subtitle.lang !== this.lang;
    const node = el(
      "li",
      {
        className: `subtitle final${shown.translated ? " translated" : ""}${mine ? " mine" : ""}${missing ? " untranslated" : ""}`,
        title: shown.translated ? subtitle.text : "",
        dataset: { speaker: speaker.id, lang: shown.lang },
      },
      el("span", { className: "subtitle-speaker", text: `${mine ? t("subtitle.you") : speaker.name}: ` }),
      el("span", { className: "subtitle-text", text: shown.text, attrs: { lang: shown.lang } }),
      missing
        ? el("span", {
            className: "subtitle-note",
            text: shown.note
              ? untranslatedText(shown.note, subtitle.lang, this.lang)
              : t("subtitle.before_switch"),
            title: shown.missing,
          })
        : null,
    );
    // The original for tests and assistive tech; shown on hover through the title attribute.
    node.dataset.original = subtitle.text;
    node.dataset.originalLang = subtitle.lang;
    return node;
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
    this.lines = [];
    this.finals.replaceChildren();
    this.partials.replaceChildren();
    this.historyList.replaceChildren();
    this.history.hidden = true;
  }
}
