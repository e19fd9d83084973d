// Messages waiting to be stored by the server. Persisted in sessionStorage so neither a dropped
// connection nor a reload loses them; each is retried with the same client_id until acked, and
// the server answers a repeated client_id with the original message (no duplicate).
import { RETRYABLE } from "./connection.js";

const RETRY_MS = 2000;

/** A client_id: random hex (crypto.getRandomValues works on plain http too). */
export function newClientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(10));
  return "w-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Queue of `{conversation_id, client_id, text, attachments?, queued_at}`. Sends one at a time, in order.
 * Dispatches `sent` (detail: {item, message}) and `failed` (detail: {item, error}).
 */
export class Outbox extends EventTarget {
  constructor(storageKey, connection) {
    super();
    this.key = storageKey;
    this.connection = connection;
    this.items = this.load();
    this.running = false;
    this.timer = null;
  }

  load() {
    try {
      const items = JSON.parse(sessionStorage.getItem(this.key) || "[]");
      return Array.isArray(items) ? items : [];
    } catch {
      return [];
    }
  }

  save() {
    sessionStorage.setItem(this.key, JSON.stringify(this.items));
  }

  /** Items still waiting for a conversation. */
  pending(conversationId) {
    return this.items.filter((item) => item.conversation_id === conversationId);
  }

  /** Queue a message (text and/or uploaded attachments, `[{id, name, ...}]`) and try to send it now. */
  add(conversationId, text, attachments = []) {
    const item = {
      conversation_id: conversationId,
      client_id: newClientId(),
      text,
      queued_at: new Date().toISOString(),
    };
    if (attachments.length) item.attachments = attachments;
    this.items.push(item);
    this.save();
    this.flush();
    return item;
  }

  remove(item) {
    this.items = this.items.filter((other) => other.client_id !== item.client_id);
    this.save();
  }

  /** Send everything queued, in order; on a retryable failure try again later. */
  async flush() {
    if (this.running) return;
    this.running = true;
    clearTimeout(this.timer);
    try {
      while (this.items.length && this.connection.connected) {
        const item = this.items[0];
        try {
          const payload = { conversation_id: item.conversation_id, client_id: item.client_id };
          if (item.text) payload.text = item.text;
          if (item.attachments?.length) payload.attachments = item.attachments.map((a) => a.id);
          const ack = await this.connection.request("message.send", payload);
          this.remove(item);
          this.dispatchEvent(new CustomEvent("sent", { detail: { item, message: ack.message } }));
        } catch (error) {
          // `unavailable`: the server lost its database for a moment; the same client_id is safe.
          if (RETRYABLE.has(error.code) || error.code === "unavailable") {
            this.timer = setTimeout(() => this.flush(), RETRY_MS);
            return;
          }
          this.remove(item);
          this.dispatchEvent(new CustomEvent("failed", { detail: { item, error } }));
        }
      }
    } finally {
      this.running = false;
    }
  }
}
