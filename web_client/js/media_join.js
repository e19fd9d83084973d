// Joining a call or tour's media, shared by the call and the tour view: a fresh peer
// connection for each (re-)join, our offer once ICE gathering is done, the join event, and the
// server's answer.

import { answerReoffer } from "./sdp_extmap.js";

const JOIN_TIMEOUT_MS = 20000;
const ICE_GATHERING_MAX_MS = 5000;

/** Resolve once the connection finished gathering ICE candidates (or after `maxMs`). */
export function iceGathered(pc, maxMs = ICE_GATHERING_MAX_MS) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== "complete") return;
      pc.removeEventListener("icegatheringstatechange", done);
      resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, maxMs);
  });
}

/**
 * A new RTCPeerConnection for `active` (the view's call or tour state), closing the one before.
 * Server re-offers wait on `active.queue` until our own offer/answer exchange is done.
 * Returns the connection and `current()`: whether it is still the view's live connection.
 */
export function freshConnection(view, active) {
  const previous = active.pc;
  const pc = new RTCPeerConnection({ iceServers: active.iceServers, bundlePolicy: "max-bundle" });
  active.pc = pc;
  try {
    previous?.close();
  } catch {
    /* already closed */
  }
  active.queue = new Promise((resolve) => {
    active.joined = resolve;
  });
  const current = () => view.active === active && active.pc === pc && !active.offline;
  active.current = current;
  return { pc, current };
}

/**
 * Answer a server re-offer for the connection `active` has now, after every exchange queued
 * before it; `reply(answer)` sends the answer, `onError(error)` hears a failure (the queue goes
 * on). Resolves true once answered (or failed), false when the connection was replaced meanwhile.
 */
export function answerInTurn(active, sdp, reply, onError) {
  const { pc, current } = active; // this connection's, not one that replaces it
  const turn = active.queue.then(async () => {
    if (!current()) return false;
    try {
      await reply(await answerReoffer(pc, sdp));
    } catch (error) {
      onError(error);
    }
    return true;
  });
  active.queue = turn;
  return turn;
}

/**
 * Our offer (ICE gathered), then `event` with `payload` and the offer (retried while the
 * server is unavailable), then `accept(ack)` (before the answer is applied: its tracks arrive
 * while it is) and the server's answer. Resolves with the ack, or null once `current()` is
 * false; rejects with the refusal otherwise.
 */
export async function offerAndJoin(connection, active, pc, current, event, payload, accept) {
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc);
    if (!current()) return null;
    const ack = await connection.requestRetrying(
      event,
      { ...payload, sdp: pc.localDescription.sdp, type: "offer" },
      JOIN_TIMEOUT_MS,
      current,
    );
    if (!ack || !current()) return null;
    accept(ack);
    await pc.setRemoteDescription({ type: "answer", sdp: ack.sdp });
    active.joined();
    return ack;
  } catch (error) {
    if (!current()) return null;
    throw error;
  }
}
