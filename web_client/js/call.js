// The video call of the open conversation: WebRTC to the server (non-trickle ICE), one tile per
// peer, live subtitles in the viewer's language, mute/camera toggles, leave and end for all.
// When the call moves to another media server (`call.moved`) or our socket comes back after a
// drop, the view re-joins by itself with a fresh offer and keeps its subtitle history
// (`MediaView`, media_view.js, does what calls and tours do alike).
import { bdi, button, byId, el } from "./dom.js";
import { failureReason } from "./failures.js";
import { downloadTranscript } from "./http_api.js";
import { languageName, t } from "./i18n.js";
import { fillLanguageSelect } from "./languages.js";
import { MediaView, localMedia, movedReason } from "./media_view.js";
import { forgetCall, saveCall, savedCall } from "./session.js";
import { SubtitleBoard } from "./subtitles.js";
import { untranslatedText } from "./translation_notes.js";

const ENDED_NOTE_MS = 8000;
const RUNNING_LOOKUPS_MAX = 50; // conversations asked for a running call after a (re)connect
const RUNNING_LOOKUPS_AT_ONCE = 5;

/** What to tell the user when the call ended under them (`endedBy`: who pressed "End"). */
function endedNote(reason, endedBy, me) {
  if (endedBy) return endedBy.id === me ? t("call.ended_by_you") : t("call.ended_by", { name: endedBy.name });
  if (reason === "ended") return t("call.ended");
  if (reason === "everyone left") return t("call.everyone_left");
  return t("call.ended_other", { reason: movedReason(reason) });
}

export class CallView extends MediaView {
  /** `app`: {me, lang, connection, conversation, names}. */
  constructor(app) {
    super(app, "call", {
      offerEvent: "rtc.offer",
      answerEvent: "rtc.answer",
      left: "call.you_left",
      updateFailed: "call.update_failed",
      langFailed: "call.lang_failed",
    });
    this.slot = byId("call-slot");
    this.view = byId("call-view");
    this.running = new Map(); // call id -> call (conversation_id, participants)
    // `active` (see MediaView) also holds `tiles`: Map(peer_id -> tile).
    this.buildView();
  }

  // ----- the call view's fixed parts -----------------------------------------------------------

  buildView() {
    this.stage = el("div", { className: "call-stage" });
    this.tilesNode = el("div", { className: "tiles", attrs: { "aria-label": t("call.video") } });
    this.board = new SubtitleBoard({ pairNoteElsewhere: true });
    this.stage.append(this.tilesNode, this.board.node, this.sound.node);
    // Says once, for as long as it holds, which speakers' language this server cannot translate
    // into ours (the lines themselves carry no note for that).
    this.pairNote = el("p", { className: "pair-note", attrs: { role: "status", id: "call-subtitle-note" } });
    this.pairNote.hidden = true;
    this.sound.render();
    this.muteButton = el("button", {
      className: "call-toggle",
      text: t("call.mute"),
      attrs: { type: "button", "aria-pressed": "false", id: "call-mute" },
      on: { click: () => this.toggle("audio") },
    });
    this.cameraButton = el("button", {
      className: "call-toggle",
      text: t("call.camera_off"),
      attrs: { type: "button", "aria-pressed": "false", id: "call-camera" },
      on: { click: () => this.toggle("video") },
    });
    this.langSelect = el("select", { attrs: { id: "call-subtitle-lang", name: "subtitle_lang" } });
    this.langSelect.addEventListener("change", () => this.setSubtitleLang(this.langSelect.value));
    const langLabel = el("label", { className: "inline call-lang" }, t("call.subtitle_lang"), this.langSelect);
    this.leaveButton = button("call-leave", t("call.leave"), "call-leave", () => this.leave());
    this.endButton = button("call-end", t("call.end"), "call-end", () => this.endForAll());
    this.note = el("p", { className: "call-note", attrs: { role: "status" } });
    this.rejoinButton = this.makeRejoinButton();
    const controls = el(
      "div",
      { className: "call-controls", attrs: { role: "toolbar", "aria-label": t("call.controls") } },
      this.rejoinButton,
      this.muteButton,
      this.cameraButton,
      langLabel,
      this.leaveButton,
      this.endButton,
    );
    this.view.replaceChildren(this.stage, this.pairNote, this.note, controls, this.board.history);
  }

  /** The buttons in the conversation header: start/join the call, download the transcript. */
  renderSlot() {
    const cid = this.app.conversation.id;
    this.slot.replaceChildren();
    if (!cid) return;
    const inCall = this.active && this.active.call.conversation_id === cid;
    if (this.active && !inCall) {
      const other = this.active.call.conversation_id;
      this.slot.append(
        button("call-button", t("call.back"), "call-return", () => this.app.openConversation(other)),
      );
    } else if (!inCall) {
      const running = this.callOf(cid);
      this.slot.append(
        button("call-button", running ? t("call.join") : t("call.call"), "call-start", (event) => this.start(cid, event.currentTarget)),
      );
    }
    if (this.app.conversation.hasTranscript()) {
      this.slot.append(
        button("quiet transcript-download", t("call.download"), "transcript-download", () => this.download(cid)),
      );
    }
  }

  /** Ask the server whether a conversation has a running call (e.g. after a reload). */
  async refreshRunning(cid) {
    if (!cid) return;
    try {
      const { call } = await this.app.connection.request("call.get", { conversation_id: cid });
      for (const [id, known] of this.running) if (known.conversation_id === cid) this.running.delete(id);
      if (call) this.running.set(call.id, call);
      if (this.app.conversation.id === cid) this.renderSlot();
    } catch {
      /* offline: the call.started / call.ended events will tell */
    }
  }

  /**
   * After a (re)connect: ask for the running calls of the first conversations of the inbox (a
   * page reloaded while a call rings learns of it here), a few requests at a time; each one found
   * rings the banner unless we are in it, started it or dismissed it.
   */
  async refreshAllRunning(conversationIds) {
    const ids = conversationIds.slice(0, RUNNING_LOOKUPS_MAX);
    let next = 0;
    const worker = async () => {
      while (next < ids.length && this.app.connection.connected) {
        const cid = ids[next++];
        try {
          const { call } = await this.app.connection.request("call.get", { conversation_id: cid });
          if (!call) continue;
          this.running.set(call.id, call);
          this.app.callAlert?.started(call);
        } catch {
          /* offline or refused: the call.started events still tell */
        }
      }
    };
    await Promise.all(Array.from({ length: RUNNING_LOOKUPS_AT_ONCE }, worker));
    this.renderSlot();
    this.app.inbox.render();
  }

  /** The running call of a conversation, if we heard of one. */
  callOf(cid) {
    for (const call of this.running.values()) if (call.conversation_id === cid) return call;
    return null;
  }

  /** Whether we are in `call` (this page, joining it now, or on another device): then it does
   * not ring, and the inbox does not mark it "calling". */
  isIn(call) {
    if (!call) return false;
    if (this.active?.call.id === call.id || this.joining === call.conversation_id) return true;
    return (call.participants || []).some((member) => member.id === this.app.me.id);
  }

  /** The conversation shown changed. */
  conversationChanged() {
    this.refreshRunning(this.app.conversation.id);
    this.renderSlot();
    this.view.hidden = !(this.active && this.active.call.conversation_id === this.app.conversation.id);
  }

  // ----- server events ---------------------------------------------------------------------

  /** The call events of a conversation's call (the moved, left, re-offer and subtitle events
   * are MediaView's). */
  kindEvents() {
    return {
      "call.started": (data) => {
        this.running.set(data.call.id, data.call);
        this.renderSlot();
        this.app.callAlert?.started(data.call);
      },
      "call.participants": (data) => {
        const call = this.running.get(data.call_id);
        if (call) call.participants = data.participants;
        if (this.isActive(data.call_id)) {
          this.active.call.participants = data.participants;
          this.syncTiles();
        }
        // Joined from another device: stop ringing here.
        if (call && this.isIn(call)) this.app.callAlert?.answered(call.conversation_id);
        this.app.inbox.render(); // someone joined or left: the "calling" mark follows
      },
      "call.ended": (data) => this.onEnded(data),
    };
  }

  onEnded(data) {
    const ended = this.running.get(data.call_id);
    this.running.delete(data.call_id);
    if (this.isActive(data.call_id) && this.joining && data.reason === "everyone left") {
      return; // it ended before our join arrived: the join's `not_found` starts it again
    }
    if (this.isActive(data.call_id)) {
      this.teardown(endedNote(data.reason, data.ended_by, this.app.me.id));
    } else if (ended && ended.conversation_id === this.app.conversation.id && data.ended_by) {
      this.view.hidden = false;
      this.view.classList.add("ended");
      this.showNote(endedNote(data.reason, data.ended_by, this.app.me.id));
      clearTimeout(this.endedTimer);
      this.endedTimer = setTimeout(() => {
        if (!this.active) this.view.hidden = true;
      }, ENDED_NOTE_MS);
    }
    this.app.callAlert?.ended(data.call_id);
    this.renderSlot();
  }

  sessionMoved(data) {
    this.running.set(data.call_id, data.call);
  }

  /** The connection dropped: the calls we knew of may have ended meanwhile. */
  onDisconnected() {
    this.running.clear();
    super.onDisconnected();
  }

  /** The socket is connected (again): re-join the call we were in when it dropped, or, on a
   * page just reloaded mid-call, the call this tab was in (kept in sessionStorage). */
  onConnected() {
    if (this.active) {
      super.onConnected();
      return;
    }
    const saved = savedCall();
    if (saved) this.resume(saved);
  }

  /** Back into the call this tab was in before a reload, by itself, if it still runs. */
  async resume(saved) {
    const cid = saved.conversation_id;
    if (this.joining) return;
    this.joining = cid; // no ringing for it meanwhile
    try {
      const { call } = await this.app.connection.request("call.get", { conversation_id: cid });
      if (!call || call.id !== saved.id) {
        forgetCall(); // it ended while the page reloaded
        return;
      }
      this.running.set(call.id, call);
      if (this.app.conversation.id !== cid) this.app.openConversation(cid);
      await this.start(cid, null, t("call.rejoining"));
    } catch {
      /* offline again: the next connect tries again */
    } finally {
      if (this.joining === cid) this.joining = null;
      this.app.inbox.render();
    }
  }

  // ----- joining and leaving ------------------------------------------------------------------

  /** Start or join the call of conversation `cid` (`button` pressed, if any; `note` meanwhile). */
  async start(cid, button = null, note = t("call.starting")) {
    if (this.active) return;
    if (button) button.disabled = true;
    this.joining = cid;
    clearTimeout(this.endedTimer);
    this.view.classList.remove("ended");
    this.showNote(note);
    this.rejoinButton.hidden = true;
    this.app.callAlert?.answered(cid);
    this.view.hidden = false;
    let active = null;
    let stream = null;
    try {
      const started = await this.startCall(cid, () => !this.active);
      if (!started) return; // another call view took over meanwhile
      const { call, ice_servers: iceServers } = started;
      const local = await localMedia();
      stream = local.stream;
      if (this.active) throw new Error("already in a call");
      active = { call, pc: null, stream, refused: local.refused, iceServers: iceServers || [], tiles: new Map() };
      this.active = active;
      this.addTile("local", stream, true);
      this.subtitleLang = this.app.lang;
      this.board.setLanguage(this.subtitleLang);
      const ack = await this.joinStarted(cid, active);
      if (!ack) return; // left, or a re-join took over
      saveCall(active.call); // a reload joins it again by itself
      fillLanguageSelect(this.langSelect, this.subtitleLang);
      this.updateToggles();
      this.syncTiles();
      this.showJoinedNote(ack);
      this.renderSlot();
    } catch (error) {
      if (!active) stream?.getTracks().forEach((track) => track.stop());
      if (!this.active || this.active === active) this.teardown(t("call.join_failed", { error: failureReason(error) }));
    } finally {
      if (button) button.disabled = false;
      if (this.joining === cid) this.joining = null;
      this.app.inbox.render();
    }
  }

  /** `call.start` for `cid` (retried while refused `node_unavailable`, the call's node just
   * died: it answers the running call, so asking again is safe), while `current()`. */
  async startCall(cid, current) {
    const started = await this.app.connection.requestRetrying("call.start", { conversation_id: cid }, 10000, current);
    if (started) this.running.set(started.call.id, started.call);
    return started;
  }

  /** Join the call `active` holds; when it ended between our `call.start` and the join (its
   * last member left, its media node was cut), start it again once (the protocol's advice). */
  async joinStarted(cid, active) {
    try {
      return await this.connectMedia(active);
    } catch (error) {
      if (error.code !== "not_found" || this.active !== active) throw error;
      this.running.delete(active.call.id);
      const started = await this.startCall(cid, () => this.active === active);
      if (!started) return null;
      active.call = started.call;
      active.iceServers = started.ice_servers || [];
      return this.connectMedia(active);
    }
  }

  /** Our camera and microphone both ways (receive only what we lack); `call.join`. */
  prepareConnection(active, pc, current) {
    pc.addEventListener("track", (event) => {
      if (current()) this.onTrack(event);
    });
    const stream = active.stream;
    for (const kind of ["audio", "video"]) {
      const track = stream?.getTracks().find((t) => t.kind === kind);
      if (track) pc.addTrack(track, stream);
      else pc.addTransceiver(kind, { direction: "recvonly" });
    }
    return { event: "call.join", payload: { call_id: active.call.id, subtitle_lang: this.subtitleLang } };
  }

  accepted(active, ack) {
    active.call = ack.call;
  }

  connectionState(state) {
    if (state === "failed") this.showNote(t("call.failed"));
  }

  rejoinStarting() {
    this.view.hidden = false;
    this.view.classList.add("moving");
  }

  rejoined(active, ack) {
    this.view.classList.remove("moving");
    this.syncTiles();
    this.showJoinedNote(ack);
  }

  rejoinFailed() {
    this.view.classList.remove("moving");
  }

  gone(active) {
    this.running.delete(active.call.id);
    super.gone(active);
  }

  /** The others' tiles belong to the connection being replaced; the next one brings its own. */
  dropRemoteMedia(active) {
    for (const [peerId, tile] of active.tiles) {
      if (tile.local) continue;
      tile.node.remove();
      active.tiles.delete(peerId);
    }
    this.sound.forget();
    this.tilesNode.dataset.count = String(active.tiles.size);
  }

  async endForAll() {
    const active = this.active;
    if (!active) return;
    this.teardown("");
    await this.app.connection.request("call.end", { call_id: active.call.id }).catch(() => {});
  }

  /** Stop our media and close the view (`note` tells why, if anything). */
  teardown(note) {
    forgetCall();
    this.stopMedia();
    this.renderPairNote();
    this.tilesNode.replaceChildren();
    this.view.classList.remove("moving");
    this.view.hidden = !note;
    this.view.classList.toggle("ended", Boolean(note));
    this.showNote(note);
    this.renderSlot();
    clearTimeout(this.endedTimer);
    if (note) {
      this.endedTimer = setTimeout(() => {
        if (!this.active) this.view.hidden = true;
      }, ENDED_NOTE_MS);
    }
  }

  // ----- media ---------------------------------------------------------------------------------

  renegotiated() {
    this.syncTiles();
  }

  onTrack(event) {
    const stream = event.streams[0];
    if (!stream || !this.active) return;
    const peerId = stream.id;
    const tile = this.addTile(peerId, stream, false);
    event.track.addEventListener("ended", () => this.syncTiles());
    stream.addEventListener("removetrack", () => this.syncTiles());
    tile.video.srcObject = stream;
    this.sound.play(tile.video);
  }

  /** A video tile for `peerId` ("local" for ours), created once. */
  addTile(peerId, stream, local) {
    const tiles = this.active.tiles;
    let tile = tiles.get(peerId);
    if (!tile) {
      const video = el("video", {
        attrs: { autoplay: true, playsinline: true, "aria-label": local ? t("call.your_camera") : t("call.video") },
      });
      video.muted = local; // our own camera plays muted by its autoplay attribute
      const name = el("span", { className: "tile-name" });
      const node = el("figure", { className: `tile${local ? " local" : " remote"}`, dataset: { peer: peerId } }, video, name);
      tile = { node, video, name, local };
      tiles.set(peerId, tile);
      if (local) this.tilesNode.append(node);
      else this.tilesNode.insertBefore(node, this.tilesNode.querySelector(".tile.local"));
    }
    if (stream && tile.video.srcObject !== stream) tile.video.srcObject = stream;
    this.nameTile(peerId, tile);
    this.tilesNode.dataset.count = String(tiles.size);
    return tile;
  }

  nameTile(peerId, tile) {
    const member = this.active.call.participants?.find((m) => m.peer_id === peerId);
    const text = tile.local ? t("subtitle.you") : member ? member.name : "…";
    // The name in its own direction, the label on the page's side (its start corner).
    tile.name.replaceChildren(bdi(text));
    tile.video.setAttribute("aria-label", tile.local ? t("call.your_camera") : t("call.video_of", { name: text }));
    if (member) this.app.names.set(member.id, member.name);
  }

  /** Drop tiles of peers who left; refresh names. */
  syncTiles() {
    const active = this.active;
    if (!active) return;
    const peers = new Set((active.call.participants || []).map((m) => m.peer_id));
    for (const [peerId, tile] of active.tiles) {
      if (tile.local) {
        this.nameTile(peerId, tile);
        continue;
      }
      const stream = tile.video.srcObject;
      const live = stream && stream.getTracks().some((t) => t.readyState === "live");
      if (!peers.has(peerId) || !live) {
        if (!peers.has(peerId)) {
          tile.node.remove();
          active.tiles.delete(peerId);
          this.sound.forget(tile.video);
        }
      } else {
        this.nameTile(peerId, tile);
      }
    }
    this.tilesNode.dataset.count = String(active.tiles.size);
  }

  toggle(kind) {
    const tracks = this.active?.stream?.getTracks().filter((t) => t.kind === kind) || [];
    if (!tracks.length) return;
    const enabled = !tracks[0].enabled;
    for (const track of tracks) track.enabled = enabled;
    this.updateToggles();
  }

  updateToggles() {
    const tracks = this.active?.stream?.getTracks() || [];
    const audio = tracks.find((t) => t.kind === "audio");
    const video = tracks.find((t) => t.kind === "video");
    this.muteButton.disabled = !audio;
    this.cameraButton.disabled = !video;
    const muted = audio ? !audio.enabled : true;
    const cameraOff = video ? !video.enabled : true;
    this.muteButton.textContent = muted ? t("call.unmute") : t("call.mute");
    this.muteButton.setAttribute("aria-pressed", String(Boolean(audio) && muted));
    this.cameraButton.textContent = cameraOff ? t("call.camera_on") : t("call.camera_off");
    this.cameraButton.setAttribute("aria-pressed", String(Boolean(video) && cameraOff));
  }

  // ----- subtitles ------------------------------------------------------------------------------

  subtitleLangChanged(lang) {
    this.board.setLanguage(lang);
    this.renderPairNote();
    this.showNote(t("call.lang_now", { lang: languageName(lang) }));
  }

  onSubtitle(data) {
    const mine = data.speaker?.id === this.app.me.id;
    this.board.show(data, this.subtitleLang || this.app.lang, mine);
    if (data.final) this.renderPairNote();
  }

  /** The persistent note: each speaker's language this server has no engine for into ours. */
  renderPairNote() {
    const text = this.board
      .pairsMissing()
      .map(({ note, from, to }) => untranslatedText(note, from, to))
      .join(" · ");
    this.pairNote.textContent = text;
    this.pairNote.hidden = !text;
  }

  // ----- transcript ---------------------------------------------------------------------------

  async download(cid) {
    try {
      await downloadTranscript(this.app.token, cid, "srt");
    } catch (error) {
      this.showNote(t("call.download_failed", { error: failureReason(error) }));
      this.view.hidden = false;
    }
  }
}
