// Factory tours (docs/protocol.md "Tours"): the list of live tours this user may watch (kept
// live by `tour.listed` / `tour.unlisted`), hosting one (suppliers: camera preview, viewer
// count, questions translated into their language), and watching one (video with audio,
// subtitles in a chosen language with the original on hover, questions). Routes: `#/tours`
// and the share link `#tour=ID`. When the tour moves to another media server (`tour.moved`) or
// our socket comes back after a drop, the host publishes again and a viewer joins again, by
// themselves, with a fresh offer (`MediaView`, media_view.js, does what calls and tours do
// alike).
import { bdi, button, byId, el } from "./dom.js";
import { failureReason } from "./failures.js";
import { saveDownload } from "./http_api.js";
import { formatter, languageName, setUiLanguage, t, translatePage } from "./i18n.js";
import { fillLanguageSelect } from "./languages.js";
import { MediaView, localMedia, movedReason } from "./media_view.js";
import { playMuted } from "./playback.js";
import "./strings/tour.js";
import { SubtitleBoard } from "./subtitles.js";
import { untranslatedText } from "./translation_notes.js";

/** Why watching a tour failed, for the reader: one they may not watch is invite only. */
function joinRefusal(error) {
  return error?.code === "forbidden" ? t("tour.private") : failureReason(error);
}

const TOUR_HASH = /^#tour=(t_[0-9a-f]{16})$/;
const QUESTION_FRESH_MS = 10000; // a new question stands out this long

/** Seconds since the tour started as a clock in the interface language ("03:07", "1:03:07";
 * "03.07" in Indonesian). */
function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const duration = { hours: Math.floor(s / 3600), minutes: Math.floor(s / 60) % 60, seconds: s % 60 };
  return formatter(Intl.DurationFormat, { style: "digital", hoursDisplay: "auto" }).format(duration);
}

/** Ids typed into the invite field: split on commas and white space, duplicates dropped. */
function parseIds(text) {
  return [...new Set(text.split(/[\s,]+/).filter(Boolean))];
}

export class TourView extends MediaView {
  /** `app`: {me, lang, token, connection}. */
  constructor(app) {
    super(app, "tour", {
      offerEvent: "tour.offer",
      answerEvent: "tour.answer",
      left: "tour.left",
      updateFailed: "tour.error",
      langFailed: "tour.error",
    });
    this.view = byId("tour-view");
    this.tours = new Map(); // tour id -> tour (as in the list)
    // `active` (see MediaView) also holds `host`: whether we host it.
    this.ended = null; // the tour that just ended (for the transcript buttons)
    this.wanted = null; // a tour id from a share link, joined once connected
    this.questions = [];
    setUiLanguage(app.lang);
    this.build();
  }

  // ----- the fixed parts ------------------------------------------------------------------------

  build() {
    const back = (this.backLink = el("a", { className: "back", text: t("tour.back"), attrs: { href: "#/", id: "tour-back" } }));
    const heading = el("h2", { text: t("tour.heading") });
    this.hostForm = this.buildHostForm();
    this.listNode = el("ul", { className: "tour-list", attrs: { id: "tour-list" } });
    this.emptyNode = el("p", { className: "hint", text: t("tour.none"), attrs: { id: "tour-none" } });
    this.listSection = el(
      "section",
      { className: "tour-lobby", attrs: { "aria-label": t("tour.live") } },
      el("h3", { text: t("tour.live") }),
      this.emptyNode,
      this.listNode,
    );
    this.stage = this.buildStage();
    this.view.replaceChildren(
      el("header", { className: "tour-header" }, back, heading),
      this.stage,
      this.hostForm,
      this.listSection,
    );
    this.render();
  }

  buildHostForm() {
    const title = el("input", { attrs: { id: "tour-title", name: "title", required: true, maxlength: 200, dir: "auto" } });
    this.spoken = el("select", { attrs: { id: "tour-lang", name: "lang" } });
    fillLanguageSelect(this.spoken, this.app.me.lang || this.app.lang);
    this.access = el(
      "select",
      { attrs: { id: "tour-access", name: "access" } },
      el("option", { text: t("tour.access_open"), attrs: { value: "open" } }),
      el("option", { text: t("tour.access_invite"), attrs: { value: "invite" } }),
    );
    this.inviteInput = el("input", {
      attrs: { id: "tour-invite", name: "invite", autocomplete: "off", spellcheck: "false" },
    });
    const inviteLabel = el("label", {}, t("tour.invite"), this.inviteInput);
    inviteLabel.hidden = true;
    this.access.addEventListener("change", () => {
      inviteLabel.hidden = this.access.value !== "invite";
    });
    this.hostError = el("p", { className: "error", attrs: { role: "alert", id: "tour-host-error" } });
    this.hostError.hidden = true;
    this.startButton = el("button", { text: t("tour.start"), attrs: { type: "submit", id: "tour-start" } });
    const form = el(
      "form",
      { className: "tour-host-form stack", attrs: { id: "tour-host-form" } },
      el("h3", { text: t("tour.host_heading") }),
      el("label", {}, t("tour.title"), title),
      el("label", {}, t("tour.spoken"), this.spoken),
      el("label", {}, t("tour.access"), this.access),
      inviteLabel,
      this.startButton,
      this.hostError,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.host(title.value.trim());
    });
    form.hidden = this.app.me.role !== "supplier";
    return form;
  }

  buildStage() {
    this.stageTitle = el("h3", { className: "tour-stage-title", attrs: { id: "tour-stage-title" } });
    this.video = el("video", { attrs: { autoplay: true, playsinline: true, id: "tour-video" } });
    this.board = new SubtitleBoard({ pairNoteElsewhere: true });
    const screen = el("div", { className: "call-stage tour-screen" }, this.video, this.board.node, this.sound.node);
    this.sound.render();
    this.note = el("p", { className: "call-note tour-note", attrs: { role: "status", id: "tour-note" } });
    // Says once, for as long as it holds, that the chosen subtitle language has no engine.
    this.subtitleNote = el("p", {
      className: "pair-note",
      attrs: { role: "status", id: "tour-subtitle-note" },
    });
    this.count = el("span", { className: "tour-count", attrs: { id: "tour-count" } });
    this.langSelect = el("select", { attrs: { id: "tour-subtitle-lang", name: "subtitle_lang" } });
    this.langSelect.addEventListener("change", () => this.setSubtitleLang(this.langSelect.value));
    this.langLabel = el("label", { className: "inline" }, t("tour.subtitle_lang"), this.langSelect);
    this.shareInput = el("input", { attrs: { id: "tour-share", readonly: true, dir: "ltr", "aria-label": t("tour.share") } });
    const copy = button("quiet", t("tour.copy"), "tour-copy", (event) => this.copyShare(event.currentTarget));
    this.shareNode = el("div", { className: "tour-share" }, el("span", { text: t("tour.share") }), this.shareInput, copy);
    this.leaveButton = button("call-leave", t("tour.leave"), "tour-leave", () => this.leave());
    this.rejoinButton = this.makeRejoinButton();
    this.endButton = button("call-end", t("tour.end"), "tour-end", () => this.end());
    this.controls = el(
      "div",
      { className: "call-controls tour-controls", attrs: { role: "toolbar" } },
      this.rejoinButton,
      this.count,
      this.langLabel,
      this.leaveButton,
      this.endButton,
    );
    const askText = el("input", {
      attrs: { id: "tour-question", name: "question", maxlength: 500, required: true, autocomplete: "off", dir: "auto" },
    });
    this.askForm = el(
      "form",
      { className: "tour-ask", attrs: { id: "tour-ask" } },
      el("label", { className: "visually-hidden", text: t("tour.ask"), attrs: { for: "tour-question" } }),
      askText,
      el("button", { text: t("tour.ask_send"), attrs: { type: "submit", id: "tour-ask-send" } }),
    );
    askText.placeholder = t("tour.ask");
    this.askForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.ask(askText);
    });
    // The viewers' questions, newest first, beside the video (not below the share link).
    this.questionList = el("ol", {
      className: "tour-questions",
      attrs: { id: "tour-questions", "aria-live": "polite" },
    });
    this.questionCount = el("span", { className: "badge tour-question-count", attrs: { id: "tour-question-count" } });
    this.questionsNode = el(
      "section",
      { className: "tour-qa", attrs: { "aria-label": t("tour.questions"), id: "tour-qa" } },
      el("h4", {}, t("tour.questions"), " ", this.questionCount),
      this.questionList,
    );
    this.downloads = el(
      "div",
      { className: "tour-downloads" },
      button("quiet", t("tour.download_txt"), "tour-download-txt", () => this.download("txt")),
      button("quiet", t("tour.download_srt"), "tour-download-srt", () => this.download("srt")),
    );
    return el(
      "section",
      { className: "call tour-stage", attrs: { id: "tour-stage", "aria-labelledby": "tour-stage-title" } },
      this.stageTitle,
      el("div", { className: "tour-main" }, screen, this.questionsNode),
      this.subtitleNote,
      this.note,
      this.controls,
      this.board.history,
      this.shareNode,
      this.askForm,
      this.downloads,
    );
  }

  /** Show what fits the state: the lobby, a running tour (as host or viewer), or an ended one. */
  render() {
    const active = this.active;
    const shown = active?.tour || this.ended;
    this.stage.hidden = !shown;
    this.stage.classList.toggle("ended", !active && Boolean(this.ended));
    this.stage.classList.toggle("hosting", Boolean(active?.host));
    if (shown) this.stageTitle.replaceChildren(bdi(shown.title));
    const hosting = Boolean(active?.host);
    this.count.hidden = !hosting;
    this.shareNode.hidden = !hosting;
    this.questionsNode.hidden = !hosting && !(this.ended?.host && this.questions.length);
    this.endButton.hidden = !hosting;
    this.leaveButton.hidden = !active || hosting;
    this.langLabel.hidden = !active || hosting;
    this.askForm.hidden = !active || hosting;
    this.downloads.hidden = Boolean(active) || !this.ended?.ran;
    this.hostForm.hidden = this.app.me.role !== "supplier" || Boolean(active);
    this.listSection.hidden = Boolean(active);
    this.backLink.hidden = Boolean(active);
    this.renderSubtitleNote();
    this.renderList();
  }

  /** The viewer's persistent note: the chosen subtitle language has no engine for the host's. */
  renderSubtitleNote() {
    const lang = this.active && !this.active.host && this.board.pairsMissing().length ? this.subtitleLang : null;
    this.subtitleNote.textContent = lang ? t("tour.unavailable", { lang: languageName(lang) }) : "";
    this.subtitleNote.hidden = !lang;
  }

  renderList() {
    const items = [...this.tours.values()].sort((a, b) => a.started_at.localeCompare(b.started_at));
    this.emptyNode.hidden = items.length > 0;
    this.listNode.replaceChildren(
      ...items.map((tour) => {
        const mine = tour.host.id === this.app.me.id;
        return el(
          "li",
          { className: "tour-item", dataset: { tour: tour.id } },
          el(
            "div",
            { className: "tour-item-text" },
            el("strong", { className: "tour-item-title" }, bdi(tour.title)),
            tour.invite ? el("span", { className: "tour-badge", text: t("tour.private") }) : null,
            el("span", {
              className: "tour-item-meta",
              text: t("tour.by", { name: tour.host.name, lang: languageName(tour.lang), count: tour.viewers }),
            }),
          ),
          mine
            ? null
            : el("button", {
                className: "tour-watch",
                text: t("tour.watch"),
                attrs: { type: "button", "aria-label": `${t("tour.watch")}: ${tour.title}` },
                on: { click: () => this.watch(tour.id) },
              }),
        );
      }),
    );
  }

  /** The interface language changed: rebuild the text (a running tour's media stays). */
  languageChanged(lang) {
    setUiLanguage(lang);
    const { video, board } = this;
    this.build();
    if (this.active) {
      this.video.replaceWith(video);
      this.video = video;
      this.board.node.replaceWith(board.node);
      this.board.history.replaceWith(board.history);
      this.board = board;
      this.showTour();
    }
    translatePage(this.view);
  }

  // ----- routing and server events --------------------------------------------------------------

  /** Take the page's hash: true when it is a tours route (`#/tours` or `#tour=ID`). */
  route(hash) {
    const match = TOUR_HASH.exec(hash);
    if (match) {
      this.wanted = match[1];
      this.joinWanted();
      return true;
    }
    return hash === "#/tours" || Boolean(this.active);
  }

  /** The tour events of the list and the running tour (the moved, left, re-offer and subtitle
   * events are MediaView's). */
  kindEvents() {
    return {
      "tour.listed": (data) => {
        this.tours.set(data.tour.id, data.tour);
        this.renderList();
      },
      "tour.unlisted": (data) => {
        this.tours.delete(data.tour_id);
        this.renderList();
      },
      "tour.viewers": (data) => {
        if (this.isActive(data.tour_id)) this.setCount(data.count);
      },
      "tour.question": (data) => {
        if (this.isActive(data.tour_id)) this.addQuestion(data.question);
      },
      "tour.ended": (data) => {
        this.tours.delete(data.tour_id);
        if (this.isActive(data.tour_id)) {
          this.teardown(data.reason === "ended" ? t("tour.ended") : t("tour.ended_reason", { reason: movedReason(data.reason) }));
        }
        this.renderList();
      },
    };
  }

  sessionMoved(data) {
    if (this.tours.has(data.tour_id)) this.tours.set(data.tour_id, { ...this.tours.get(data.tour_id), ...data.tour });
  }

  /** (Re)connected: back into the tour we were in when the socket dropped, refresh the list,
   * join a tour from a share link. */
  async onConnected() {
    super.onConnected();
    try {
      const { tours } = await this.app.connection.request("tour.list", {});
      this.tours = new Map(tours.map((tour) => [tour.id, tour]));
      this.renderList();
    } catch {
      /* the next reconnect retries */
    }
    this.joinWanted();
  }

  /** Watch a tour from the list (through its share link, so a reload rejoins it). */
  watch(id) {
    const hash = `#tour=${id}`;
    if (location.hash === hash) this.join(id);
    else location.hash = hash;
  }

  joinWanted() {
    const id = this.wanted;
    if (!id || !this.app.connection.connected || this.active?.tour.id === id) return;
    this.wanted = null;
    this.join(id);
  }

  // ----- hosting --------------------------------------------------------------------------------

  async host(title) {
    if (this.active) return;
    const invite = this.access.value === "invite" ? parseIds(this.inviteInput.value) : null;
    if (invite && !invite.length) {
      this.hostError.textContent = t("tour.invite_needed");
      this.hostError.hidden = false;
      return;
    }
    this.hostError.hidden = true;
    this.startButton.disabled = true;
    let active = null;
    let stream = null;
    let started = null;
    try {
      // The camera first: a tour nobody can see is never listed (and has nothing to publish).
      const local = await localMedia();
      stream = local.stream;
      if (!stream) {
        this.hostError.textContent = this.say(local.refused ? "media_refused" : "no_media");
        this.hostError.hidden = false;
        return;
      }
      const { tour, ice_servers: iceServers } = await this.app.connection.request("tour.start", {
        title,
        lang: this.spoken.value,
        invite,
      });
      started = tour.id;
      if (this.active) throw new Error("already in a tour");
      active = { tour, host: true, pc: null, stream, iceServers: iceServers || [] };
      this.active = active;
      this.subtitleLang = tour.lang; // the host reads their own words
      this.ended = null;
      this.questions = [];
      this.showTour();
      this.showNote(t("tour.starting"));
      this.video.srcObject = stream;
      this.video.setAttribute("aria-label", t("tour.preview"));
      playMuted(this.video); // our own preview
      const ack = await this.connectMedia(active);
      if (!ack) return;
      this.showJoinedNote(ack);
      location.hash = "#/tours";
    } catch (error) {
      if (!active) stream?.getTracks().forEach((track) => track.stop());
      if (!this.active || this.active === active) this.teardown(t("tour.failed", { message: failureReason(error) }), false);
      // A tour that started but could not publish must not stay listed for the viewers.
      if (started) this.app.connection.request("tour.end", { tour_id: started }).catch(() => {});
    } finally {
      this.startButton.disabled = false;
    }
  }

  setCount(count) {
    this.active.tour.viewers = count;
    this.count.textContent = t("tour.viewers", { count });
  }

  addQuestion(question) {
    this.questions.push({ ...question, arrived: Date.now() });
    this.renderQuestions();
    this.questionList.scrollTop = 0; // the newest is on top
    clearTimeout(this.freshTimer);
    this.freshTimer = setTimeout(() => this.renderQuestions(), QUESTION_FRESH_MS);
  }

  /** The viewers' questions, newest first, in the host's language (the original one click
   * away, and on hover), or the original with a note when no engine translates it. */
  renderQuestions() {
    const count = this.questions.length;
    this.questionCount.textContent = String(count);
    this.questionCount.hidden = !count;
    this.questionCount.setAttribute("aria-label", t("tour.questions_count", { count }));
    const now = Date.now();
    this.questionList.replaceChildren(...[...this.questions].reverse().map((q) => this.questionItem(q, now)));
    if (!count) this.questionList.append(el("li", { className: "hint", text: t("tour.no_questions") }));
  }

  questionItem(q, now) {
    const translated = typeof q.translation === "string" && q.translation;
    const differs = translated && q.translation !== q.text;
    const fresh = now - (q.arrived || 0) < QUESTION_FRESH_MS;
    const original = el("p", { className: "tour-question-original", text: q.text, attrs: { lang: q.lang, dir: "auto" } });
    original.hidden = !q.showOriginal;
    const toggle = differs
      ? el("button", {
          className: "quiet tour-question-toggle",
          text: q.showOriginal ? t("tour.hide_original") : t("tour.show_original"),
          attrs: { type: "button", "aria-expanded": String(Boolean(q.showOriginal)) },
          on: {
            click: () => {
              q.showOriginal = !q.showOriginal;
              this.renderQuestions();
            },
          },
        })
      : null;
    return el(
      "li",
      {
        className: `tour-question${differs ? " translated" : ""}${fresh ? " new" : ""}`,
        title: differs ? q.text : "",
        dataset: { original: q.text, lang: q.lang, id: String(q.id) },
      },
      el(
        "div",
        { className: "tour-question-meta" },
        el("span", { className: "subtitle-speaker" }, bdi(q.asker.name), " (", bdi(q.lang), ")"),
        typeof q.at === "number" ? el("span", { className: "tour-question-at", text: clock(q.at) }) : null,
      ),
      el("p", {
        className: "tour-question-text",
        text: translated ? q.translation : q.text,
        attrs: { lang: translated ? this.subtitleLang : q.lang, dir: "auto" },
      }),
      translated
        ? null
        : el("span", {
            className: "subtitle-note",
            text: untranslatedText(q.translation_error, q.lang, this.subtitleLang),
            title: `${q.lang}→${this.subtitleLang}`,
          }),
      toggle,
      original,
    );
  }

  async copyShare(button) {
    this.shareInput.select();
    try {
      await navigator.clipboard.writeText(this.shareInput.value);
    } catch {
      document.execCommand?.("copy");
    }
    button.textContent = t("tour.copied");
    setTimeout(() => (button.textContent = t("tour.copy")), 2000);
  }

  async end() {
    const active = this.active;
    if (!active) return;
    try {
      await this.app.connection.request("tour.end", { tour_id: active.tour.id });
    } catch (error) {
      this.showNote(t("tour.error", { message: failureReason(error) }));
    }
    // tour.ended (to the host too) tears down; if it never comes, do it now.
    if (this.active === active) this.teardown(t("tour.ended"));
  }

  // ----- watching -------------------------------------------------------------------------------

  async join(id) {
    if (this.active) return;
    this.ended = null;
    const title = this.tours.get(id)?.title || t("tour.heading"); // not listed (yet): no raw id
    const active = { tour: { id, title }, host: false, pc: null, stream: null, iceServers: [] };
    this.active = active;
    this.subtitleLang = this.app.lang;
    this.showTour();
    this.showNote(t("tour.joining"));
    try {
      const ack = await this.connectMedia(active);
      if (!ack) return;
      this.showTour();
      this.showNote("");
    } catch (error) {
      if (this.active === active) {
        this.teardown(t("tour.failed", { message: joinRefusal(error) }), false);
        this.forgetLink(id);
      }
    }
  }

  /** The host sends its camera and microphone (`tour.publish`); a viewer receives the host's
   * (`tour.join`). */
  prepareConnection(active, pc, current) {
    if (active.host) {
      const stream = active.stream;
      for (const track of stream?.getTracks() || []) pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
      return { event: "tour.publish", payload: { tour_id: active.tour.id } };
    }
    pc.addEventListener("track", (trackEvent) => {
      if (!current()) return;
      const stream = trackEvent.streams[0];
      if (stream && this.video.srcObject !== stream) this.video.srcObject = stream;
      this.sound.play(this.video);
    });
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addTransceiver("video", { direction: "recvonly" });
    return { event: "tour.join", payload: { tour_id: active.tour.id, subtitle_lang: this.subtitleLang } };
  }

  accepted(active, ack) {
    if (ack.tour) active.tour = ack.tour;
  }

  /** The old connection's picture is frozen: a viewer's video goes until the next one plays. */
  dropRemoteMedia(active) {
    if (!active.host) this.video.srcObject = null;
    this.sound.forget();
  }

  rejoined(active, ack) {
    if (active.host) this.showJoinedNote(ack);
    else this.showNote("");
    this.showTour();
  }

  rejoinRefused(active, error) {
    if (!active.host || error.code !== "forbidden") return false;
    // Only the socket that started a tour may publish it: a new socket cannot take it over.
    this.teardown(t("tour.rejoin_failed", { message: failureReason(error) }));
    return true;
  }

  /** A subtitle line; the persistent note follows the latest final (no engine: said once there,
   * not under each line; translated: gone). */
  onSubtitle(data) {
    this.board.show(data, this.subtitleLang, false);
    if (data.final) this.renderSubtitleNote();
  }

  /** Another subtitle language: every line reads in it; the next final says whether it has an engine. */
  subtitleLangChanged(lang) {
    this.board.setLanguage(lang);
    this.renderSubtitleNote();
  }

  async ask(input) {
    const active = this.active;
    if (!active || !input.value.trim()) return;
    try {
      await this.app.connection.request("tour.ask", { tour_id: active.tour.id, text: input.value.trim() });
      input.value = "";
      this.showNote(t("tour.asked"));
    } catch (error) {
      this.showNote(t("tour.error", { message: failureReason(error) }));
    }
  }

  afterLeave() {
    const left = this.ended?.id;
    this.ended = null;
    this.render();
    if (left) this.forgetLink(left);
  }

  /** The page no longer points at tour `id` (`#tour=ID` becomes `#/tours` without a new history
   * entry or a hashchange): a reload after leaving, or after a link that failed, shows the list
   * instead of trying that tour again. */
  forgetLink(id) {
    if (location.hash === `#tour=${id}`) history.replaceState(null, "", "#/tours");
    if (this.wanted === id) this.wanted = null;
  }

  // ----- shared ---------------------------------------------------------------------------------

  /** Show the running tour (or `tour` while joining it). */
  showTour(tour = this.active?.tour) {
    document.body.classList.add("in-tours");
    if (this.active?.host) {
      this.shareInput.value = `${location.origin}${location.pathname}#tour=${tour.id}`;
      this.setCount(tour.viewers || 0);
      this.renderQuestions();
    } else {
      fillLanguageSelect(this.langSelect, this.subtitleLang || this.app.lang);
      this.video.setAttribute("aria-label", t("tour.video"));
    }
    this.render();
    if (tour) this.stageTitle.replaceChildren(bdi(tour.title));
  }

  /** Stop media and show `note`; `ran`: the tour ran for us, so offer its transcript. */
  teardown(note, ran = true) {
    const active = this.stopMedia();
    if (active) this.ended = { ...active.tour, host: active.host, ran };
    this.video.srcObject = null;
    this.render();
    this.showNote(note);
    if (this.ended?.host) this.renderQuestions();
  }

  async download(format) {
    const tour = this.ended;
    if (!tour) return;
    try {
      await saveDownload(this.app.token, `/api/tours/${tour.id}/transcript?format=${format}`, `tour-${tour.id}.${format}`);
    } catch (error) {
      this.showNote(t("tour.error", { message: failureReason(error) }));
    }
  }
}
