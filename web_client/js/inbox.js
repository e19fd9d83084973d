// The inbox: every conversation, newest activity first, with last message and unread count.
import { bdi, byId, el, morph, showMessage } from "./dom.js";
import { t } from "./i18n.js";
import { readable, shortTime } from "./messages.js";
import { attachmentsPreview } from "./attachments.js";
import { quotePreview } from "./quotes.js";
import "./strings/inbox.js";

function activity(entry) {
  return entry.last_message?.ts || entry.created_at || "";
}

export class InboxView {
  /** `app`: {me, lang, connection, names, online, openConversation(id)}. */
  constructor(app) {
    this.app = app;
    this.entries = new Map();
    this.list = byId("inbox-list");
    this.empty = byId("inbox-empty");
    this.activeId = null;
    const form = byId("new-conversation");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.start();
    });
  }

  /** Replace everything with an `inbox.list` answer (asked at `askedAt`, performance.now()). */
  setAll(conversations, askedAt = performance.now()) {
    this.entries = new Map(conversations.map((entry) => [entry.id, entry]));
    for (const entry of conversations) this.learn(entry, askedAt);
    this.render();
  }

  /** Apply one `inbox.update` entry. */
  upsert(entry) {
    this.entries.set(entry.id, { ...this.entries.get(entry.id), ...entry });
    this.learn(entry);
    this.render();
  }

  /** Names, languages and presence an entry brings (`inbox.list` and a new conversation's
   * first `inbox.update`); `presence` events keep the presence live after that, and one heard
   * since the answer was asked for (`since`) is newer than the answer's snapshot. */
  learn(entry, since = performance.now()) {
    this.app.learnPeople(entry.people);
    for (const [user, online] of Object.entries(entry.online || {})) {
      if ((this.app.presenceHeard.get(user) ?? -1) < since) this.app.online.set(user, online);
    }
  }

  setActive(id) {
    this.activeId = id;
    this.render();
  }

  title(entry) {
    if (entry.title) return entry.title;
    const others = (entry.participants || []).filter((p) => p !== this.app.me.id);
    return others.map((p) => this.app.names.get(p) || p).join(", ") || t("inbox.just_you");
  }

  /** Conversation ids, newest activity first (the order shown). */
  ids() {
    return this.sorted().map((entry) => entry.id);
  }

  sorted() {
    return [...this.entries.values()].sort((a, b) => activity(b).localeCompare(activity(a)));
  }

  /** Show the entries, newest first. Each conversation keeps its item across renders (changed
   * in place, moved only when its place changes): an agent's inbox updates many times a second,
   * and a click must not be lost because the item under the pointer was rebuilt meanwhile. */
  render() {
    const entries = this.sorted();
    this.empty.hidden = entries.length > 0;
    const shown = new Map([...this.list.children].map((li) => [li.dataset.id, li]));
    entries.forEach((entry, i) => {
      let node = this.item(entry);
      const old = shown.get(entry.id);
      if (old) {
        morph(old, node);
        node = old;
        shown.delete(entry.id);
      }
      const at = this.list.children[i];
      if (at !== node) this.list.insertBefore(node, at || null);
    });
    for (const gone of shown.values()) gone.remove();
    this.app.updateTitle?.();
  }

  item(entry) {
    const last = entry.last_message;
    if (last?.sender) this.app.names.set(last.sender.id, last.sender.name);
    const shown = last?.kind === "quote" ? { text: quotePreview(last) } : readable(last, this.app.lang);
    const others = (entry.participants || []).filter((p) => p !== this.app.me.id);
    // Presence as last heard; unknown (a hollow dot, never "online") while we are offline.
    const known = others.some((p) => this.app.online.has(p));
    const online = others.some((p) => this.app.online.get(p));
    const presence = !known ? "unknown" : online ? "online" : "offline";
    // Who and what, each kept in its own direction: "You: M8x30 bolts, 5000 pcs." in Arabic.
    const preview = last
      ? [
          last.sender?.id === this.app.me.id
            ? t("inbox.you")
            : bdi(this.app.names.get(last.sender?.id) || last.sender?.name || "?"),
          ": ",
          bdi(shown.text || attachmentsPreview(last)),
        ]
      : [t("inbox.no_messages")];
    // The agent sees each lead's language beside their name.
    const langs = others.map((p) => this.app.people.get(p)?.lang).filter(Boolean);
    // A call running here that we are not in (ringing, or joinable); none once we joined.
    const call = this.app.call?.callOf(entry.id);
    const calling = call && !this.app.call.isIn(call);
    const link = el(
      "a",
      {
        className: "inbox-link",
        attrs: { href: `#/c/${entry.id}`, "aria-current": entry.id === this.activeId ? "page" : null },
      },
      el(
        "span",
        { className: "inbox-top" },
        others.length
          ? el("span", {
              className: `dot ${{ online: "on", offline: "off", unknown: "unknown" }[presence]}`,
              title: t(`presence.${presence}`),
              dataset: { presence },
              attrs: { role: "img", "aria-label": t(`presence.${presence}`) },
            })
          : null,
        el("span", { className: "inbox-title", text: this.title(entry), attrs: { dir: "auto" } }),
        langs.length ? el("span", { className: "inbox-lang", text: [...new Set(langs)].join(", ") }) : null,
        calling ? el("span", { className: "inbox-calling", text: t("inbox.calling") }) : null,
        el("time", { className: "inbox-time", text: last ? shortTime(last.ts) : "" }),
      ),
      el(
        "span",
        { className: "inbox-bottom" },
        el("span", { className: "inbox-preview" }, ...preview),
        entry.unread > 0
          ? el("span", {
              className: "badge",
              text: entry.unread,
              attrs: { "aria-label": t("inbox.unread", { count: entry.unread }) },
            })
          : null,
      ),
    );
    return el("li", { className: "inbox-item", dataset: { id: entry.id } }, link);
  }

  /** The two-person conversation with `user`, if there is one. */
  withUser(user) {
    for (const entry of this.entries.values()) {
      const members = entry.participants || [];
      if (members.length === 2 && members.includes(user) && members.includes(this.app.me.id)) return entry;
    }
    return null;
  }

  /** Total unread messages (for the tab title). */
  unreadTotal() {
    let total = 0;
    for (const entry of this.entries.values()) total += entry.unread || 0;
    return total;
  }

  /** Create a conversation from the form; open it. */
  async start() {
    const input = byId("new-participants");
    const titleInput = byId("new-title");
    const error = byId("new-error");
    const participants = input.value.split(/[\s,]+/).filter(Boolean);
    if (!participants.length) return;
    const payload = { participants };
    if (titleInput.value.trim()) payload.title = titleInput.value.trim();
    showMessage(error, "");
    try {
      const ack = await this.app.connection.request("conversation.create", payload);
      input.value = "";
      titleInput.value = "";
      this.upsert({ ...ack.conversation, last_message: null, unread: 0 });
      this.app.openConversation(ack.conversation.id);
    } catch (err) {
      showMessage(error, t("inbox.start_failed", { error: err.message }));
    }
  }
}
