// The Socket.IO connection: requests with acks, and connection state for the UI.
import { io } from "/vendor/socket.io.esm.min.js";

/** A request the server refused (`code` from docs/protocol.md) or that got no answer (`timeout`);
 * `field`: the payload field an `invalid` refusal names, when it names one. */
export class RequestError extends Error {
  constructor(code, message, field = null) {
    super(message);
    this.code = code;
    this.field = field;
  }
}

/** Codes worth retrying later; any other refusal is final. */
export const RETRYABLE = new Set(["timeout", "disconnected", "rate_limited", "internal"]);

/** Refusals that say "the server side is briefly away, ask again": the database restarting
 * (`unavailable`, as a refused connect is retried below) and the process holding a call or tour
 * not answering the forward (`node_unavailable`, docs/protocol.md). */
export const RETRY_SOON = new Set(["unavailable", "node_unavailable"]);
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

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
        if (RETRY_SOON.has(err?.data?.code)) setTimeout(() => this.socket.connect(), 2000);
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
      throw new RequestError(ack?.error?.code || "internal", ack?.error?.message || "request failed", ack?.error?.field);
    }
    return ack;
  }

  /**
   * `request`, asked again after 0.5, 1, 2 and 4 s while the answer is a RETRY_SOON refusal (or
   * the socket is down for a moment). `still()` is checked before each new try: false abandons
   * the request (resolves null), e.g. when the call it was for has been left meanwhile.
   */
  async requestRetrying(event, data = {}, timeoutMs = 10000, still = () => true) {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await this.request(event, data, timeoutMs);
      } catch (error) {
        const again = RETRY_SOON.has(error.code) || error.code === "disconnected";
        if (!again || attempt >= RETRY_DELAYS_MS.length) throw error;
        await sleep(RETRY_DELAYS_MS[attempt]);
        if (!still()) return null;
      }
    }
  }

  close() {
    this.socket.disconnect();
  }
}
