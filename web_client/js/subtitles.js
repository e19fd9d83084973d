// Live subtitles over the video: per speaker at most two caption lines, the one being spoken
// (translated while the speaker talks: its committed part steady, the tentative tail dimmed)
// and the one before; a final replaces the open line in place, in the viewer's language (the
// original on hover). Older lines move to a scrollable panel below the video. A final that
// could not be translated into the viewer's language shows the original plus a short note in
// the viewer's language (why, from the server's note: js/translation_notes.js). Text only.
// Calls and tours send one shape: `translations: {lang: text}`, `translation_error: {lang:
// note}`, and on an open line `committed: {lang: characters steady}` (docs/protocol.md).
import { bdi, el } from "./dom.js";
import { t } from "./i18n.js";
import "./strings/call.js";
import { untranslatedText } from "./translation_notes.js";

const FINALS_OVER_VIDEO = 2;
const LINES_PER_SPEAKER = 2;
const HISTORY_KEPT = 200;
const PARTIAL_STALE_MS = 8000;

/**
 * `{text, lang, translated, note, missing}`: a final subtitle as read in `lang` (the original if
 * no translation; `missing` is then the pair, e.g. "ko→en", and `note` the server's note
 * `{code, from, to}` when it said why — none for a line said before `lang` was chosen).
 */
export function subtitleFor(subtitle, lang) {
  if (subtitle.lang === lang) return { text: subtitle.text, lang, translated: false, note: null };
  const translation = subtitle.translations?.[lang];
  if (typeof translation === "string" && translation) {
    return { text: translation, lang, translated: true, note: null };
  }
  return {
    text: subtitle.text,
    lang: subtitle.lang,
    translated: false,
    note: subtitle.translation_error?.[lang] || null,
    missing: `${subtitle.lang}→${lang}`,
  };
}

/**
 * `{steady, tentative, lang, translated}`: an open line as read in `lang` — its translation
 * (the committed characters steady, the rest tentative) once one arrived, else the speaker's
 * words so far, all tentative.
 */
export function openLineFor(subtitle, lang) {
  const translation = subtitle.lang === lang ? undefined : subtitle.translations?.[lang];
  if (typeof translation === "string" && translation) {
    const steady = Math.max(0, Math.min(subtitle.committed?.[lang] ?? 0, translation.length));
    return {
      steady: translation.slice(0, steady),
      tentative: translation.slice(steady),
      lang,
      translated: true,
    };
  }
  return { steady: "", tentative: subtitle.text, lang: subtitle.lang, translated: false };
}

export class SubtitleBoard {
  /** `pairNoteElsewhere`: the view says once, in its own persistent note (`pairsMissing()`),
   * that the reader's language has no engine for a speaker's, so a line left untranslated for
   * that reason carries no note of its own. */
  constructor({ pairNoteElsewhere = false } = {}) {
    this.pairNoteElsewhere = pairNoteElsewhere;
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
    this.lines = []; // {subtitle, mine, key}, oldest first
    this.finalsShown = 0; // each final's key in the history panel
    this.open = new Map(); // speaker id -> the open line's latest subtitle
    this.lang = "en";
    this.timers = new Map(); // speaker id -> timer clearing a stale open line
  }

  /** Show a `subtitle` event for a viewer reading `lang` (`mine`: the viewer spoke it). */
  show(subtitle, lang, mine) {
    const speaker = subtitle.speaker || { id: "?", name: "?" };
    const fresh = this.lang !== lang;
    this.lang = lang;
    if (!subtitle.final) {
      const opened = !this.open.has(speaker.id);
      this.open.set(speaker.id, { ...subtitle, speaker });
      clearTimeout(this.timers.get(speaker.id));
      this.timers.set(speaker.id, setTimeout(() => this.dropPartial(speaker.id), PARTIAL_STALE_MS));
      if (opened || fresh) this.render(); // the speaker's earlier line may move to the panel
      else this.renderOpen();
      return;
    }
    clearTimeout(this.timers.get(speaker.id));
    this.timers.delete(speaker.id);
    this.open.delete(speaker.id);
    this.finalsShown += 1;
    this.lines.push({ subtitle, mine, key: String(this.finalsShown) });
    if (this.lines.length > HISTORY_KEPT + FINALS_OVER_VIDEO) this.lines.shift();
    this.render();
  }

  /** `[{from, to, note}]`: per speaker's language, when its latest final reads in the original
   * because the server has no engine for it into the reader's language (`no_pair`): what the
   * view's one persistent note says when the lines carry none (`pairNoteElsewhere`). */
  pairsMissing() {
    const latest = new Map();
    for (const { subtitle } of this.lines) latest.set(subtitle.lang, subtitle);
    return [...latest.values()]
      .map((subtitle) => ({ subtitle, shown: subtitleFor(subtitle, this.lang) }))
      .filter(({ shown }) => shown.note?.code === "no_pair")
      .map(({ subtitle, shown }) => ({ from: subtitle.lang, to: this.lang, note: shown.note }));
  }

  /** Read every line (shown and earlier) in `lang` from now on. */
  setLanguage(lang) {
    this.lang = lang;
    this.render();
  }

  /** How many of the latest finals stay over the video: at most two, and at most two lines
   * per speaker counting the line they are saying now. */
  overVideo() {
    const count = new Map([...this.open.keys()].map((id) => [id, 1]));
    let kept = 0;
    for (let i = this.lines.length - 1; i >= 0 && kept < FINALS_OVER_VIDEO; i -= 1) {
      const id = this.lines[i].subtitle.speaker?.id ?? "?";
      if ((count.get(id) || 0) >= LINES_PER_SPEAKER) break;
      count.set(id, (count.get(id) || 0) + 1);
      kept += 1;
    }
    return kept;
  }

  render() {
    const kept = this.overVideo();
    const recent = kept ? this.lines.slice(-kept) : [];
    const older = this.lines.slice(0, this.lines.length - kept);
    this.finals.replaceChildren(...recent.map(({ subtitle, mine }) => this.line(subtitle, mine)));
    const nearEnd =
      this.historyList.scrollHeight - this.historyList.scrollTop - this.historyList.clientHeight < 40;
    this.renderHistory(older);
    this.historyTitle.textContent = t("call.history");
    this.history.hidden = older.length === 0;
    if (nearEnd) this.historyList.scrollTop = this.historyList.scrollHeight;
    this.renderOpen();
  }

  /** The earlier lines, each node kept while its line stays (in the reader's language): a new
   * final adds one at the end and the oldest leaves from the front, nothing else is touched, so
   * a reader selecting words to copy (a price, a part number) keeps the selection. */
  renderHistory(older) {
    const wanted = new Set(older.map(({ key }) => key));
    for (const node of [...this.historyList.children]) {
      if (!wanted.has(node.dataset.key) || node.dataset.shownIn !== this.lang) node.remove();
    }
    let next = this.historyList.firstElementChild;
    for (const { subtitle, mine, key } of older) {
      if (next && next.dataset.key === key) {
        next = next.nextElementSibling;
        continue;
      }
      const node = this.line(subtitle, mine);
      node.dataset.key = key;
      node.dataset.shownIn = this.lang;
      this.historyList.insertBefore(node, next);
    }
  }

  line(subtitle, mine) {
    const speaker = subtitle.speaker || { id: "?", name: "?" };
    const shown = subtitleFor(subtitle, this.lang);
    const missing = !shown.translated && subtitle.lang !== this.lang;
    const noted = missing && !(this.pairNoteElsewhere && shown.note?.code === "no_pair");
    const node = el(
      "li",
      {
        className: `subtitle final${shown.translated ? " translated" : ""}${mine ? " mine" : ""}${missing ? " untranslated" : ""}`,
        title: shown.translated ? subtitle.text : "",
        dataset: { speaker: speaker.id, lang: shown.lang },
      },
      // The name and the words each keep their own direction: "…for your country." does not
      // become ".…for your country" under an Arabic page's right-to-left order.
      el("span", { className: "subtitle-speaker" }, mine ? t("subtitle.you") : bdi(speaker.name), ": "),
      el("span", { className: "subtitle-text", text: shown.text, attrs: { lang: shown.lang, dir: "auto" } }),
      noted
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

  /** The open lines, one per speaker, updated in place (the steady part's text node is only
   * touched when it grew, so it never flickers). */
  renderOpen() {
    for (const node of [...this.partials.children]) {
      if (!this.open.has(node.dataset.speaker)) node.remove();
    }
    for (const [id, subtitle] of this.open) {
      let line = this.partials.querySelector(`[data-speaker="${CSS.escape(id)}"]`);
      if (!line) {
        line = el(
          "p",
          { className: "subtitle partial", dataset: { speaker: id } },
          el("span", { className: "subtitle-speaker" }, bdi(subtitle.speaker.name), ": "),
          el(
            "span",
            { className: "subtitle-text", attrs: { dir: "auto" } },
            el("span", { className: "subtitle-committed" }),
            el("span", { className: "subtitle-tentative" }),
          ),
        );
        this.partials.append(line);
      }
      const shown = openLineFor(subtitle, this.lang);
      const text = line.querySelector(".subtitle-text");
      const [steady, tentative] = text.children;
      if (steady.textContent !== shown.steady) steady.textContent = shown.steady;
      if (tentative.textContent !== shown.tentative) tentative.textContent = shown.tentative;
      text.setAttribute("lang", shown.lang);
      line.classList.toggle("translated", shown.translated);
      line.title = shown.translated ? subtitle.text : "";
    }
  }

  dropPartial(speakerId) {
    clearTimeout(this.timers.get(speakerId));
    this.timers.delete(speakerId);
    if (this.open.delete(speakerId)) this.render();
  }

  clear() {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.open.clear();
    this.lines = [];
    this.finals.replaceChildren();
    this.partials.replaceChildren();
    this.historyList.replaceChildren();
    this.history.hidden = true;
  }
}
