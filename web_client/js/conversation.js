// One open conversation: messages in the reader's language, history on scroll, typing, read
// ticks, presence, and sending through the outbox.
import { bdi, byId, el } from "./dom.js";
import { t } from "./i18n.js";
import "./strings/conversation.js";
import { readable, shortTime } from "./messages.js";
import { failureReason } from "./failures.js";
import { saveDownload } from "./http_api.js";
import { untranslatedText } from "./translation_notes.js";
import { AttachTray, attachmentsNode } from "./attachments.js";

const TYPING_IDLE_MS = 3000;
const TYPING_SHOWN_MS = 6000;
const HISTORY_PAGE = 50;

export class ConversationView {
  /** `app`: {me, lang, connection, outbox, names, online, inbox}. */
  constructor(app) {
    this.app = app;
    this.body = byId("conv-body");
    this.placeholder = byId("conv-placeholder");
    this.list = byId("messages");
    this.titleNode = byId("conv-title");
    this.presenceNode = byId("conv-presence");
    this.typingNode = byId("typing");
    this.input = byId("composer-text");
    this.reset(null);
    this.tray = new AttachTray(this, {
      tray: byId("attach-tray"),
      button: byId("attach-button"),
      input: byId("attach-input"),
      dropZone: this.body,
      composer: this.input,
    });
    // A message may be files alone: the text is required only when nothing is attached.
    this.tray.changed = () => {
      this.input.required = this.tray.ready().length === 0;
    };

    byId("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
    this.input.addEventListener("input", () => this.typed());
    this.list.addEventListener("scroll", () => {
      if (this.list.scrollTop < 80) this.loadOlder();
      this.atEnd = this.nearEnd();
    });
    // A preview (an image, a PDF's first page) that loads after its message was shown makes the
    // list taller: a reader who was at the end stays there, the newest message in full view.
    this.atEnd = true;
    this.list.addEventListener(
      "load",
      (event) => {
        if (event.target instanceof HTMLImageElement && this.atEnd) this.scrollToEnd();
      },
      true,
    );
    document.addEventListener("visibilitychange", () => this.markRead());
  }

  reset(id) {
    this.id = id;
    this.conversation = null;
    this.messages = new Map(); // id -> message
    this.original = new Set(); // message ids shown in their original language
    this.readBy = new Map(); // user id -> highest message id they read
    this.typers = new Map(); // user id -> timer
    this.hasOlder = false;
    this.loadingOlder = false;
    this.lastReadSent = 0;
    this.joined = false;
    clearTimeout(this.typingTimer);
    this.typingActive = false;
    this.lastTypingSent = 0;
  }

  get lastId() {
    return this.messages.size ? Math.max(...this.messages.keys()) : 0;
  }

  get oldestId() {
    return this.messages.size ? Math.min(...this.messages.keys()) : null;
  }

  /** Open conversation `id` (or close with null). */
  async open(id) {
    if (id === this.id && this.joined) return;
    this.reset(id);
    this.tray.clear();
    this.list.replaceChildren();
    this.typingNode.textContent = "";
    this.body.hidden = !id;
    this.placeholder.hidden = Boolean(id);
    if (id) await this.join();
  }

  /** Join (or re-join after a reconnect, with `since` = the last id seen). */
  async join() {
    const id = this.id;
    if (!id || !this.app.connection.connected) return;
    const since = this.lastId;
    try {
      let ack = await this.app.connection.request(
        "conversation.join",
        since ? { conversation_id: id, since } : { conversation_id: id },
      );
      if (id !== this.id) return;
      this.conversation = ack.conversation;
      this.app.learnPeople(ack.conversation.people);
      for (const [user, online] of Object.entries(ack.online || {})) this.app.online.set(user, online);
      for (const [user, messageId] of Object.entries(ack.read || {})) this.noteRead(user, messageId);
      if (!since) this.hasOlder = ack.has_more;
      this.addMessages(ack.messages);
      while (since && ack.has_more && id === this.id) {
        ack = await this.app.connection.request("conversation.join", {
          conversation_id: id,
          since: this.lastId,
        });
        this.addMessages(ack.messages);
      }
      this.joined = true;
      this.renderHeader();
      this.renderPending();
      this.scrollToEnd();
      this.fillViewport();
      this.markRead();
    } catch (error) {
      if (error.code === "not_found" || error.code === "forbidden") {
        this.titleNode.textContent = t("conv.unavailable");
        this.list.replaceChildren(el("li", { className: "hint", text: error.message }));
      }
    }
  }

  /** Keep loading older pages until the list can scroll (so scroll-up has something to do). */
  async fillViewport() {
    while (this.hasOlder && this.list.scrollHeight <= this.list.clientHeight + 80) {
      if (!(await this.loadOlder())) break;
    }
  }

  /** `history.get` the page before the oldest message; keep the scroll position. */
  async loadOlder() {
    if (!this.hasOlder || this.loadingOlder || !this.id) return false;
    this.loadingOlder = true;
    const id = this.id;
    try {
      const ack = await this.app.connection.request("history.get", {
        conversation_id: id,
        before: this.oldestId,
        limit: HISTORY_PAGE,
      });
      if (id !== this.id) return false;
      const fromBottom = this.list.scrollHeight - this.list.scrollTop;
      this.hasOlder = ack.has_more;
      this.addMessages(ack.messages);
      this.list.scrollTop = this.list.scrollHeight - fromBottom;
      return ack.messages.length > 0;
    } catch {
      return false;
    } finally {
      this.loadingOlder = false;
    }
  }

  /** Whether the loaded history holds a call (its entry, or transcript lines of older releases). */
  hasTranscript() {
    for (const message of this.messages.values()) {
      if (message.kind === "call" || message.kind === "transcript") return true;
    }
    return false;
  }

  /** Add messages (any order; known ids are ignored) and render them in id order. */
  addMessages(messages) {
    let added = false;
    const hadTranscript = this.hasTranscript();
    for (const message of messages || []) {
      if (message.conversation_id !== this.id) continue;
      if (message.sender.id === this.app.me.id) this.dropPending(message.client_id);
      if (this.messages.has(message.id)) continue;
      this.messages.set(message.id, message);
      this.app.names.set(message.sender.id, message.sender.name);
      if (message.kind === "quote") this.app.quotes.learned(this, message);
      this.insert(message);
      added = true;
    }
    if (added && !hadTranscript && this.hasTranscript()) this.app.call?.renderSlot();
    return added;
  }

  /** Put a message's element at its place (ordered by id, before the pending ones). */
  insert(message) {
    const node = this.messageNode(message);
    const after = [...this.list.querySelectorAll("li.msg[data-id]")].find(
      (other) => Number(other.dataset.id) > message.id,
    );
    this.list.insertBefore(node, after || this.list.querySelector("li.pending"));
  }

  messageNode(message) {
    if (message.kind === "call") return this.callNode(message);
    if (message.kind === "transcript") return this.transcriptNode(message);
    if (message.kind === "quote") return this.app.quotes.node(this, message);
    const mine = message.sender.id === this.app.me.id;
    const showOriginal = this.original.has(message.id);
    const shown = showOriginal
      ? { text: message.text, lang: message.lang, translated: false }
      : readable(message, this.app.lang);
    const canToggle = showOriginal || shown.translated;
    const foot = el("div", { className: "msg-foot" });
    if (canToggle) {
      foot.append(
        el("button", {
          className: "link toggle-original",
          text: showOriginal ? t("conv.show_translation") : t("conv.show_original"),
          attrs: { type: "button", "aria-pressed": showOriginal ? "true" : "false" },
          on: { click: () => this.toggleOriginal(message.id) },
        }),
      );
    }
    if (mine) foot.append(this.ticks(message));
    return el(
      "li",
      { className: `msg ${mine ? "mine" : "theirs"}`, dataset: { id: String(message.id) } },
      el(
        "div",
        { className: "msg-meta" },
        this.senderNode(message, mine),
        el("time", { text: shortTime(message.ts), attrs: { datetime: message.ts } }),
      ),
      // dir=auto: each text reads in its own direction ("M8x30 bolts, 5000 pcs." stays so in an
      // Arabic page, an Arabic message right to left in a Vietnamese one).
      message.text
        ? el("p", {
            className: `msg-text${shown.translated ? " translated" : ""}`,
            text: shown.text,
            attrs: { lang: shown.lang, dir: "auto" },
          })
        : null,
      // Why the text is untranslated goes right under it, not below the message's files; never
      // under our own words (we wrote them: nothing is missing for us).
      message.text && shown.missing && !mine ? this.untranslatedNote(shown, message) : null,
      attachmentsNode(message, this.app.token),
      foot,
    );
  }

  /** A call's one entry: "📞 Call, 4 min, 39 lines — transcript" (the link downloads it). */
  callNode(message) {
    const call = message.call || {};
    const lines = Number(call.lines) || 0;
    const summary = t("conv.call_entry", {
      duration: callDuration(call.duration_s),
      lines: lines === 1 ? t("conv.call_line") : t("conv.call_lines", { count: lines }),
    });
    const note = el("span", { className: "note call-note", attrs: { role: "status" } });
    const link = call.transcript
      ? el("button", {
          className: "link call-transcript",
          text: t("conv.call_transcript"),
          attrs: { type: "button" },
          on: { click: () => this.downloadCall(call, note) },
        })
      : null;
    return el(
      "li",
      { className: "msg call-entry", dataset: { id: String(message.id), callId: message.call_id || "" } },
      el("time", { text: shortTime(message.ts), attrs: { datetime: message.ts } }),
      el("span", { className: "call-summary", text: summary }),
      link ? el("span", { className: "call-dash", text: " — " }) : null,
      link,
      note,
    );
  }

  /** Download one call's transcript as text. */
  async downloadCall(call, note) {
    note.textContent = "";
    try {
      await saveDownload(this.app.token, `${call.transcript}&format=txt`, `transcript-${call.id}.txt`);
    } catch (error) {
      note.textContent = t("conv.call_download_failed", { error: failureReason(error) });
    }
  }

  /** A line of a call transcript (kept in the history by older releases): the speaker's words in
   * the reader's language, and the original. */
  transcriptNode(message) {
    const mine = message.sender.id === this.app.me.id;
    const shown = readable(message, this.app.lang);
    return el(
      "li",
      { className: "msg transcript", dataset: { id: String(message.id), callId: message.call_id || "" } },
      el(
        "div",
        { className: "msg-meta" },
        el("span", { className: "transcript-tag", text: t("conv.transcript") }),
        this.senderNode(message, mine),
        el("time", { text: shortTime(message.ts), attrs: { datetime: message.ts } }),
      ),
      el("p", {
        className: `msg-text${shown.translated ? " translated" : ""}`,
        text: shown.text,
        attrs: { lang: shown.lang, dir: "auto" },
      }),
      shown.translated
        ? el("p", { className: "transcript-original", text: message.text, attrs: { lang: message.lang, dir: "auto" } })
        : null,
      shown.missing ? this.untranslatedNote(shown, message) : null,
    );
  }

  /** The visible note under a message or transcript line that has no translation for us. */
  untranslatedNote(shown, message) {
    return el("span", {
      className: "note untranslated",
      text: untranslatedText(shown.note, message.lang, this.app.lang),
    });
  }

  /** Who wrote a message: "You" in our language, else their name kept in its own direction. */
  senderNode(message, mine) {
    return el("span", { className: "sender" }, mine ? t("conv.you") : bdi(this.nameOf(message.sender)));
  }

  /** A person's display name: the conversation's people, names seen so far, else the id. */
  nameOf(person) {
    const id = typeof person === "string" ? person : person.id;
    return this.app.names.get(id) || (typeof person === "string" ? id : person.name) || id;
  }

  ticks(message) {
    const readers = [...this.readBy.entries()].filter(
      ([user, upTo]) => user !== this.app.me.id && upTo >= message.id,
    );
    const read = readers.length > 0;
    const names = readers.map(([user]) => this.nameOf(user)).join(", ");
    return el("span", {
      className: `ticks ${read ? "read" : "sent"}`,
      text: read ? "✓✓" : "✓",
      title: read ? t("conv.read_by", { names }) : t("conv.sent"),
      attrs: { "aria-label": read ? t("conv.read_by", { names }) : t("conv.sent") },
    });
  }

  toggleOriginal(id) {
    if (this.original.has(id)) this.original.delete(id);
    else this.original.add(id);
    this.rerender(id);
  }

  rerender(id) {
    const old = this.list.querySelector(`li.msg[data-id="${id}"]`);
    const message = this.messages.get(id);
    if (old && message) old.replaceWith(this.messageNode(message));
  }

  /** Re-render every message (after a language change). */
  rerenderAll() {
    for (const id of this.messages.keys()) this.rerender(id);
  }

  // ----- pending (outbox) messages -------------------------------------------------------

  renderPending() {
    for (const node of this.list.querySelectorAll("li.pending")) node.remove();
    for (const item of this.app.outbox.pending(this.id)) this.list.append(this.pendingNode(item));
  }

  pendingNode(item, failure = null) {
    return el(
      "li",
      { className: `msg mine pending${failure ? " failed" : ""}`, dataset: { clientId: item.client_id } },
      el("div", { className: "msg-meta" }, el("span", { className: "sender", text: t("conv.you") })),
      item.text ? el("p", { className: "msg-text", text: item.text }) : null,
      item.attachments?.length
        ? el("p", { className: "msg-text pending-files", text: item.attachments.map((a) => `📎 ${a.name}`).join("\n") })
        : null,
      el(
        "div",
        { className: "msg-foot" },
        el("span", {
          className: "ticks queued",
          text: failure ? t("conv.not_sent", { error: failure }) : t("conv.sending"),
          attrs: { role: failure ? "alert" : null },
        }),
      ),
    );
  }

  dropPending(clientId) {
    for (const node of this.list.querySelectorAll("li.pending")) {
      if (node.dataset.clientId === clientId) node.remove();
    }
  }

  send() {
    const text = this.input.value.trim();
    const files = this.tray.ready();
    if ((!text && !files.length) || !this.id) return;
    if (this.tray.busy()) {
      this.typingNode.textContent = t("att.wait");
      return;
    }
    this.input.value = "";
    this.tray.clear({ abort: false });
    this.stopTyping();
    const item = this.app.outbox.add(this.id, text, files);
    if (!this.list.querySelector(`li.pending[data-client-id="${item.client_id}"]`)) {
      this.list.append(this.pendingNode(item));
    }
    this.scrollToEnd();
  }

  /** The outbox stored a message. */
  sent(message) {
    if (message.conversation_id !== this.id) return;
    this.onMessage(message);
  }

  /** The outbox gave up on a message (the server refused it). */
  failed(item, error) {
    if (item.conversation_id !== this.id) return;
    for (const node of this.list.querySelectorAll("li.pending")) {
      if (node.dataset.clientId === item.client_id) node.replaceWith(this.pendingNode(item, error.message));
    }
  }

  // ----- live events ---------------------------------------------------------------------

  onMessage(message) {
    if (message.conversation_id !== this.id) return;
    const nearEnd = this.nearEnd();
    if (!this.addMessages([message])) return;
    this.setTyper(message.sender.id, false);
    if (nearEnd || message.sender.id === this.app.me.id) this.scrollToEnd();
    this.markRead();
  }

  onTyping({ conversation_id: cid, user_id: user, active }) {
    if (cid === this.id && user !== this.app.me.id) this.setTyper(user, active);
  }

  setTyper(user, active) {
    clearTimeout(this.typers.get(user));
    this.typers.delete(user);
    if (active) this.typers.set(user, setTimeout(() => this.setTyper(user, false), TYPING_SHOWN_MS));
    const names = [...this.typers.keys()].map((u) => this.nameOf(u));
    this.typingNode.textContent = names.length
      ? t(names.length > 1 ? "conv.typing_many" : "conv.typing_one", { names: names.join(", ") })
      : "";
  }

  onRead({ conversation_id: cid, user_id: user, message_id: messageId }) {
    if (cid !== this.id) return;
    this.noteRead(user, messageId);
    for (const node of this.list.querySelectorAll("li.msg.mine[data-id]")) {
      const id = Number(node.dataset.id);
      if (id <= messageId) this.rerender(id);
    }
  }

  noteRead(user, messageId) {
    this.readBy.set(user, Math.max(this.readBy.get(user) || 0, messageId));
  }

  onPresence() {
    this.renderHeader();
  }

  renderHeader() {
    if (!this.conversation) return;
    const others = this.conversation.participants.filter((p) => p !== this.app.me.id);
    this.titleNode.textContent =
      this.conversation.title || others.map((p) => this.nameOf(p)).join(", ") || t("inbox.just_you");
    this.presenceNode.replaceChildren(
      ...others.map((user) => {
        // Unknown while our own connection is down: never "online" on stale news.
        const presence = !this.app.online.has(user) ? "unknown" : this.app.online.get(user) ? "online" : "offline";
        const lang = this.app.people.get(user)?.lang;
        const state = t(`presence.${presence}`);
        return el(
          "li",
          { className: "presence-item", dataset: { user, presence } },
          el("span", { className: `dot ${{ online: "on", offline: "off", unknown: "unknown" }[presence]}` }),
          el("span", {}, bdi(this.nameOf(user)), lang ? " (" : "", lang ? bdi(lang) : "", lang ? ")" : "", ` · ${state}`),
        );
      }),
    );
  }

  // ----- typing and read markers we send ---------------------------------------------------

  typed() {
    if (!this.id || !this.app.connection.connected) return;
    const now = Date.now();
    if (!this.typingActive || now - this.lastTypingSent > TYPING_IDLE_MS) {
      this.typingActive = true;
      this.lastTypingSent = now;
      this.app.connection.request("typing", { conversation_id: this.id, active: true }).catch(() => {});
    }
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.typingTimer);
    if (!this.typingActive || !this.id) return;
    this.typingActive = false;
    this.app.connection.request("typing", { conversation_id: this.id, active: false }).catch(() => {});
  }

  /** Tell the server we read up to the last message (when the tab is visible). */
  markRead() {
    const last = this.lastId;
    if (!this.id || !last || last <= this.lastReadSent || document.visibilityState !== "visible") return;
    if (!this.app.connection.connected) return;
    this.lastReadSent = last;
    this.app.connection
      .request("message.read", { conversation_id: this.id, message_id: last })
      .catch(() => {
        this.lastReadSent = 0;
      });
  }

  /** Whether the reader is at (or within a line of) the end of the list. */
  nearEnd() {
    return this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 120;
  }

  scrollToEnd() {
    this.list.scrollTop = this.list.scrollHeight;
    this.atEnd = true;
  }
}

/** A call's length for its entry: seconds under a minute, else whole minutes. */
function callDuration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  return s < 60 ? t("conv.call_seconds", { n: s }) : t("conv.call_minutes", { n: Math.round(s / 60) });
}
