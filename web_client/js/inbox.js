// The inbox: every conversation, newest activity first, with last message and unread count.
import { byId, el, showMessage } from "./dom.js";
import { readable, shortTime } from "./messages.js";

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

  /** Replace everything with an `inbox.list` answer. */
  setAll(conversations) {
    this.entries = new Map(conversations.map((entry) => [entry.id, entry]));
    this.render();
  }

  /** Apply one `inbox.update` entry. */
  upsert(entry) {
    this.entries.set(entry.id, { ...this.entries.get(entry.id), ...entry });
    this.render();
  }

  setActive(id) {
    this.activeId = id;
    this.render();
  }

  title(entry) {
    if (entry.title) return entry.title;
    const others = (entry.participants || []).filter((p) => p !== this.app.me.id);
    return others.map((p) => this.app.names.get(p) || p).join(", ") || "Just you";
  }

  render() {
    const entries = [...this.entries.values()].sort((a, b) => activity(b).localeCompare(activity(a)));
    this.empty.hidden = entries.length > 0;
    this.list.replaceChildren(...entries.map((entry) => this.item(entry)));
  }

  item(entry) {
    const last = entry.last_message;
    if (last?.sender) this.app.names.set(last.sender.id, last.sender.name);
    const shown = readable(last, this.app.lang);
    const others = (entry.participants || []).filter((p) => p !== this.app.me.id);
    const known = others.some((p) => this.app.online.has(p));
    const online = others.some((p) => this.app.online.get(p));
    const preview = last
      ? `${last.sender?.id === this.app.me.id ? "You" : last.sender?.name || "?"}: ${shown.text}`
      : "No messages yet";
    const link = el(
      "a",
      {
        className: "inbox-link",
        attrs: { href: `#/c/${entry.id}`, "aria-current": entry.id === this.activeId ? "page" : null },
      },
      el(
        "span",
        { className: "inbox-top" },
        known
          ? el("span", {
              className: `dot ${online ? "on" : "off"}`,
              title: online ? "online" : "offline",
              attrs: { role: "img", "aria-label": online ? "online" : "offline" },
            })
          : null,
        el("span", { className: "inbox-title", text: this.title(entry) }),
        el("time", { className: "inbox-time", text: last ? shortTime(last.ts) : "" }),
      ),
      el(
        "span",
        { className: "inbox-bottom" },
        el("span", { className: "inbox-preview", text: preview }),
        entry.unread > 0
          ? el("span", {
              className: "badge",
              text: entry.unread,
              attrs: { "aria-label": `${entry.unread} unread` },
            })
          : null,
      ),
    );
    return el("li", { className: "inbox-item", dataset: { id: entry.id } }, link);
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
      showMessage(error, `Could not start the conversation: ${err.message}`);
    }
  }
}
