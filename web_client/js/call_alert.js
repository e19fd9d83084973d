// Incoming calls, wherever the user is: a banner with the caller's name and Join/Dismiss, a
// "calling" mark on the conversation in the inbox, and the tab title.
import { byId } from "./dom.js";
import { t } from "./i18n.js";
import "./strings/app.js";

const BASE_TITLE = "TradeTalk";

export class CallAlert {
  /** `app`: {me, names, inbox, call, openConversation(id)}. */
  constructor(app) {
    this.app = app;
    this.banner = byId("call-banner");
    this.text = byId("call-banner-text");
    this.ringing = null; // the call the banner shows
    this.dismissed = new Set(); // call ids the user dismissed
    byId("call-banner-join").addEventListener("click", () => this.join());
    byId("call-banner-dismiss").addEventListener("click", () => this.dismiss());
  }

  /** `call.started` (or a running call learned otherwise): ring unless it's ours or known. */
  started(call) {
    if (call.started_by === this.app.me.id || this.dismissed.has(call.id)) return;
    if (this.app.call.isIn(call)) return; // in it (or joining it), here or on another device
    this.ringing = call;
    this.render();
  }

  /** The user joined a call of conversation `cid`: stop ringing for it. */
  answered(cid) {
    if (this.ringing?.conversation_id === cid) {
      this.dismissed.add(this.ringing.id);
      this.ringing = null;
    }
    this.render();
  }

  ended(callId) {
    this.dismissed.delete(callId);
    if (this.ringing?.id === callId) this.ringing = null;
    this.render();
  }

  async join() {
    const call = this.ringing;
    if (!call) return;
    const cid = call.conversation_id;
    this.answered(cid);
    this.app.openConversation(cid);
    // Wait (up to 10 s) until the conversation is open and shows its "Join call" button.
    for (let i = 0; i < 100; i += 1) {
      const view = this.app.conversation;
      const button = document.getElementById("call-start");
      if (view.id === cid && view.joined && button && !button.disabled) {
        this.app.call.start(cid, button);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  dismiss() {
    if (this.ringing) this.dismissed.add(this.ringing.id);
    this.ringing = null;
    this.render();
  }

  callerName(call) {
    return this.app.names.get(call.started_by) || call.started_by;
  }

  render() {
    const call = this.ringing;
    this.banner.hidden = !call;
    if (call) {
      const entry = this.app.inbox.entries.get(call.conversation_id);
      const name = this.callerName(call);
      const title = entry ? this.app.inbox.title(entry) : name;
      this.text.textContent =
        title === name ? t("banner.calling_direct", { name }) : t("banner.calling", { name, title });
    }
    this.app.inbox.render();
  }

  /** The tab title: the ringing call first, then the unread count. */
  updateTitle() {
    if (this.ringing) {
      document.title = `${t("title.calling", { name: this.callerName(this.ringing) })} — ${BASE_TITLE}`;
      return;
    }
    const unread = this.app.inbox.unreadTotal();
    document.title = unread > 0 ? t("title.unread", { count: unread }) : BASE_TITLE;
  }
}
