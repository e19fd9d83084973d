// One media view for calls and tours (docs/protocol.md "Calls", "Tours"): what both do alike.
// `CallView` (call.js) and `TourView` (tour.js) extend `MediaView` and say what differs: who
// sends which tracks, which join event, what the page shows. The skeleton here owns the session
// this tab is in (`active`), its connection (a fresh one for every (re-)join, its state), the
// events both kinds have (moved, left, the server's re-offer, subtitles), re-joining after a
// move or a dropped socket, answering re-offers in order, the subtitle language, leaving, and
// the note under the video.
import { button, el } from "./dom.js";
import { failureReason } from "./failures.js";
import { languageName, t } from "./i18n.js";
import { answerInTurn, freshConnection, offerAndJoin } from "./media_join.js";
import { SoundGate } from "./playback.js";

/** Why a call or tour moved (or ended), in the interface language when it is a reason of
 * docs/protocol.md ("media server lost", "host left", "server shutting down", …), else as the
 * server said it. */
export function movedReason(reason) {
  const key = {
    "media server lost": "moved.lost",
    "media server restarting": "moved.restarting",
    idle: "ended.idle",
    "host left": "ended.host_left",
    "host disconnected": "ended.host_disconnected",
    "server shutting down": "ended.shutting_down",
  }[reason];
  return key ? t(key) : reason || t("moved.unknown");
}

/** `{stream, refused}`: the microphone and camera, or as much of them as the browser grants
 * (`stream` null: receive only); `refused`: the browser or the user blocked them (so there may
 * well be a camera: the note says how to allow it, not that there is none). */
export async function localMedia() {
  const tries = [
    { audio: true, video: { width: { ideal: 640 }, height: { ideal: 360 } } },
    { audio: true, video: false },
    { audio: false, video: true },
  ];
  let refused = false;
  for (const constraints of tries) {
    try {
      return { stream: await navigator.mediaDevices.getUserMedia(constraints), refused: false };
    } catch (error) {
      refused ||= error?.name === "NotAllowedError" || error?.name === "SecurityError";
    }
  }
  return { stream: null, refused };
}

/**
 * The media session this tab is in, as a view. `kind` ("call" or "tour") names the events
 * (`call.moved`), the payloads' id field (`call_id`), where `active` keeps the session
 * (`active.call`), and the strings (`call.reconnecting`). `options`: the re-offer and answer
 * events, and the string keys that differ between the kinds (`left`, `updateFailed`,
 * `langFailed`; each may use `{error}` or `{message}`).
 *
 * `active`: {<kind>, pc, stream, refused, iceServers, queue, joined, current, offline, …}; `pc` is
 * replaced on every (re-)join, the rest stays for the whole session. A subclass builds
 * `note`, `board`, `langSelect` and `rejoinButton` (`makeRejoinButton()` makes it) and says what
 * differs through the hooks below.
 */
export class MediaView {
  constructor(app, kind, options) {
    this.app = app;
    this.kind = kind;
    this.idField = `${kind}_id`;
    this.options = options;
    this.active = null;
    this.subtitleLang = null;
    // The others' sound, once the browser allows it (a page reloaded mid-session, or a share
    // link opened without a click, has had no click).
    this.sound = new SoundGate(`${kind}-sound`, () => ({ sound: t(`${kind}.sound`), play: t(`${kind}.play`) }));
  }

  /** Whether `id` is the session this tab is in. */
  isActive(id) {
    return Boolean(this.active) && this.active[this.kind].id === id;
  }

  /** `key` of this kind's strings with `vars`; an error's text goes in as `{error}` and `{message}`. */
  say(key, vars = {}) {
    return t(key.includes(".") ? key : `${this.kind}.${key}`, vars);
  }

  failed(key, error) {
    const reason = failureReason(error);
    return this.say(key, { error: reason, message: reason });
  }

  /** The "join again" button (hidden until a re-join failed). */
  makeRejoinButton() {
    const node = button("call-rejoin", this.say("rejoin"), `${this.kind}-rejoin`, () => {
      if (this.active) this.rejoin(this.active, this.say("rejoining"));
    });
    node.hidden = true;
    return node;
  }

  // ----- server events ---------------------------------------------------------------------

  /** The kind's own events: name -> handler(data); a handler returning false leaves the event
   * to the rest of the page. */
  kindEvents() {
    return {};
  }

  /** Handle a server event; true when it was one of this view's. */
  onEvent(event, data) {
    this.eventTable ??= {
      ...this.kindEvents(),
      [`${this.kind}.moved`]: (d) => this.onMoved(d),
      [`${this.kind}.left`]: (d) => {
        if (this.isActive(d[this.idField])) this.teardown(this.say(this.options.left, { reason: d.reason }));
      },
      [this.options.offerEvent]: (d) => {
        if (this.isActive(d[this.idField])) this.renegotiate(d.sdp);
      },
      subtitle: (d) => {
        if (!(this.idField in d)) return false; // the other kind's line
        if (this.isActive(d[this.idField])) this.onSubtitle(d);
        return true;
      },
    };
    const handler = this.eventTable[event];
    return Boolean(handler) && handler(data) !== false;
  }

  /** The session continues on another media server: join it there (hook: `sessionMoved`). */
  onMoved(data) {
    this.sessionMoved(data);
    if (!this.isActive(data[this.idField])) return;
    this.active[this.kind] = { ...this.active[this.kind], ...data[this.kind] };
    this.rejoin(this.active, this.say("moved", { reason: movedReason(data.reason) }));
  }

  /** The socket dropped: the server drops this socket's part in the session, so we join again
   * once the socket is back (`onConnected`); until then the view stays, with a note. */
  onDisconnected() {
    const active = this.active;
    if (!active || active.offline) return;
    active.offline = true;
    active.pc?.close(); // its member on the server is gone with the socket
    this.dropRemoteMedia(active);
    this.rejoinButton.hidden = true;
    this.showNote(this.say("reconnecting"));
  }

  /** The socket is back: join the session we were in when it dropped. */
  onConnected() {
    const active = this.active;
    if (!active?.offline) return;
    active.offline = false;
    this.rejoin(active, this.say("reconnecting"));
  }

  // ----- the connection ------------------------------------------------------------------------

  /**
   * A new RTCPeerConnection for `active` (closing the one before), our offer, the kind's join
   * event, the server's answer. Resolves with the ack, or null when the session was left or
   * another (re-)join replaced this one meanwhile; rejects with the refusal otherwise.
   */
  async connectMedia(active) {
    const { pc, current } = freshConnection(this, active);
    pc.addEventListener("connectionstatechange", () => {
      if (current()) this.connectionState(pc.connectionState);
    });
    const { event, payload } = this.prepareConnection(active, pc, current);
    return offerAndJoin(this.app.connection, active, pc, current, event, payload, (ack) => this.accepted(active, ack));
  }

  /** Join again with a fresh connection (the session moved, or our socket came back); `note`
   * says why meanwhile. The subtitle lines so far stay. */
  async rejoin(active, note) {
    if (this.active !== active) return;
    this.rejoinStarting(active);
    this.rejoinButton.hidden = true;
    this.showNote(note);
    this.dropRemoteMedia(active);
    try {
      const ack = await this.connectMedia(active);
      if (!ack) return;
      this.rejoined(active, ack);
    } catch (error) {
      if (this.active !== active) return;
      if (error.code === "not_found") {
        this.gone(active); // it ended while we were away (everyone left, or it could not move)
        return;
      }
      if (this.rejoinRefused(active, error)) return;
      this.rejoinFailed(active);
      this.showNote(this.failed("rejoin_failed", error));
      this.rejoinButton.hidden = false;
    }
  }

  /** Answer a server offer (someone joined or left, media arrived); offers are answered one at
   * a time, in order. */
  async renegotiate(sdp) {
    const active = this.active;
    const id = active[this.kind].id;
    const reply = (answer) =>
      this.app.connection.request(this.options.answerEvent, { [this.idField]: id, sdp: answer, type: "answer" });
    const answered = await answerInTurn(active, sdp, reply, (error) => {
      console.warn("renegotiation failed", error);
      this.showNote(this.failed(this.options.updateFailed, error));
    });
    if (answered) this.renegotiated();
    return answered;
  }

  /** After a join: say whether our speech is subtitled (or that we have no media), else nothing. */
  showJoinedNote(ack) {
    if (ack.captions && !ack.captions.available) {
      this.showNote(this.say("no_captions", { lang: languageName(ack.captions.lang) }));
    } else {
      const why = this.active?.refused ? "media_refused" : "no_media";
      this.showNote(this.active?.stream ? "" : this.say(why));
    }
  }

  /** Stop our media and connection (the session is over for this tab); returns what was active. */
  stopMedia() {
    const active = this.active;
    this.active = null;
    if (active) {
      active.joined?.();
      active.stream?.getTracks().forEach((track) => track.stop());
      try {
        active.pc.close();
      } catch {
        /* already closed */
      }
    }
    this.sound.forget();
    this.board.clear();
    this.rejoinButton.hidden = true;
    return active;
  }

  async leave() {
    const active = this.active;
    if (!active) return;
    this.teardown("");
    this.afterLeave();
    await this.app.connection.request(`${this.kind}.leave`, { [this.idField]: active[this.kind].id }).catch(() => {});
  }

  // ----- subtitles -------------------------------------------------------------------------------

  async setSubtitleLang(lang) {
    const active = this.active;
    if (!active) return;
    try {
      await this.app.connection.request(`${this.kind}.subtitles`, { [this.idField]: active[this.kind].id, lang });
      this.subtitleLang = lang;
      this.subtitleLangChanged(lang);
    } catch (error) {
      this.langSelect.value = this.subtitleLang;
      this.showNote(this.failed(this.options.langFailed, error));
    }
  }

  showNote(text) {
    this.note.title = "";
    this.note.textContent = text || "";
    this.note.hidden = !text;
  }

  // ----- hooks (what a kind says) ---------------------------------------------------------------

  /** The tracks and transceivers of a fresh connection; returns {event, payload} to join with. */
  prepareConnection(_active, _pc, _current) {
    throw new Error("a media view says how it joins");
  }

  /** The join was accepted (before its answer is applied). */
  accepted(_active, _ack) {}

  /** The live connection's state changed ("connected", "failed", …). */
  connectionState(_state) {}

  /** A `<kind>.moved` event, whether or not we are in that session (lists follow it). */
  sessionMoved(_data) {}

  /** A re-join begins: the view shows it. */
  rejoinStarting(_active) {}

  /** A re-join succeeded. */
  rejoined(_active, ack) {
    this.showJoinedNote(ack);
  }

  /** A re-join was refused for good (true: handled, nothing more to try). */
  rejoinRefused(_active, _error) {
    return false;
  }

  /** A re-join failed; the "join again" button shows next. */
  rejoinFailed(_active) {}

  /** The session ended while we were away. */
  gone(_active) {
    this.teardown(this.say("gone"));
  }

  /** What came through the connection being replaced goes; the next one brings its own. */
  dropRemoteMedia(_active) {
    this.sound.forget();
  }

  /** A re-offer was answered. */
  renegotiated() {}

  /** After `leave()`'s teardown. */
  afterLeave() {}

  /** The subtitle language changed on the server. */
  subtitleLangChanged(_lang) {}

  /** A subtitle line of the session. */
  onSubtitle(_data) {}

  /** Stop media and close the view (`note` says why, if anything). */
  teardown(_note) {
    this.stopMedia();
  }
}
