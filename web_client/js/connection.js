// The Socket.IO connection: requests with acks, and connection state for the UI.
import { io } from "/vendor/socket.io.esm.min.js";

/** A request the server refused (`code` from docs/protocol.md) or that got no answer (`timeout`). */
export class RequestError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** Codes worth retrying later; any other refusal is final. */
export const RETRYABLE = new Set(["timeout", "disconnected", "rate_limited", "internal"]);

/**
 * Wraps one socket. Dispatches DOM events: `connected` (every (re)connect), `disconnected`,
 * `unauthorized` (detail: reason), and `server` (detail: {event, data}) for every server event.
 */
export class Connection extends EventTarget {
  constructor(token) {
    super();
    this.everConnected = false;
    this.socket = io({
      auth: { token },
      reconnectionDelay: 500,
      reconnectionDelayMax: 3000,
    });
    this.socket.on("connect", () => {
      this.everConnected = true;
      this.dispatchEvent(new Event("connected"));
    });
    this.socket.on("disconnect", (reason) => {
      this.dispatchEvent(new CustomEvent("disconnected", { detail: reason }));
      // A server-side disconnect is not retried by socket.io itself; we always want to come back.
      if (reason === "io server disconnect") setTimeout(() => this.socket.connect(), 1000);
    });
    this.socket.on("connect_error", (err) => {
      if (String(err?.message || "").startsWith("unauthorized")) {
        this.dispatchEvent(new CustomEvent("unauthorized", { detail: err.data?.message || err.message }));
      } else {
        // `unavailable`: the server's database is restarting; a refused connect is not retried
        // by socket.io-client itself, so try again shortly.
        if (err?.data?.code === "unavailable") setTimeout(() => this.socket.connect(), 2000);
        this.dispatchEvent(new CustomEvent("disconnected", { detail: err?.message }));
      }
    });
    this.socket.onAny((event, data) => {
      this.dispatchEvent(new CustomEvent("server", { detail: { event, data } }));
    });
  }

  get connected() {
    return this.socket.connected;
  }

  /** Emit `event` and resolve with the ok-ack; reject with RequestError otherwise. */
  async request(event, data = {}, timeoutMs = 10000) {
    if (!this.socket.connected) throw new RequestError("disconnected", "not connected");
    let ack;
    try {
      ack = await this.socket.timeout(timeoutMs).emitWithAck(event, data);
    } catch {
      throw new RequestError("timeout", `${event}: no answer in ${timeoutMs} ms`);
    }
    if (!ack || ack.ok !== true) {
      throw new RequestError(ack?.error?.code || "internal", ack?.error?.message || "request failed");
    }
    return ack;
  }

  close() {
    this.socket.disconnect();
  }
}
