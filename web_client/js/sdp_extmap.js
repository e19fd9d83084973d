// Keep RTP header-extension ids stable across renegotiations.
//
// The server (aiortc) numbers header extensions afresh in every offer it makes (mid = 1, ...),
// while the ids were first chosen by the browser's own offer (audio-level = 1, ...). Chromium
// refuses an offer that gives an id in use a new meaning ("RTP extension ID reassignment not
// supported"), so before applying a server offer we renumber its extensions to the ids already
// negotiated; aiortc adopts whatever ids the answer carries.

const EXTMAP = /^a=extmap:(\d+)(\/[a-z]+)? (\S+)(.*)$/;

/** uri -> id of every `a=extmap` line in the given SDP texts. */
export function extmapIds(...sdps) {
  const ids = new Map();
  for (const sdp of sdps) {
    for (const line of (sdp || "").split(/\r?\n/)) {
      const match = EXTMAP.exec(line);
      if (match && !ids.has(match[3])) ids.set(match[3], Number(match[1]));
    }
  }
  return ids;
}

/** `offer` with each extension renumbered to its id in `known` (uri -> id); new ones get free ids. */
export function alignExtmapIds(offer, known) {
  const ids = new Map(known);
  const used = new Set(ids.values());
  const idFor = (uri) => {
    if (!ids.has(uri)) {
      let id = 1;
      while (used.has(id)) id += 1;
      ids.set(uri, id);
      used.add(id);
    }
    return ids.get(uri);
  };
  const eol = offer.includes("\r\n") ? "\r\n" : "\n";
  return offer
    .split(/\r?\n/)
    .map((line) => {
      const match = EXTMAP.exec(line);
      return match ? `a=extmap:${idFor(match[3])}${match[2] || ""} ${match[3]}${match[4]}` : line;
    })
    .join(eol);
}

/** Apply a server re-offer to `pc` with the extension ids already negotiated; return the answer SDP. */
export async function answerReoffer(pc, sdp) {
  const known = extmapIds(pc.currentLocalDescription?.sdp, pc.currentRemoteDescription?.sdp);
  await pc.setRemoteDescription({ type: "offer", sdp: alignExtmapIds(sdp, known) });
  await pc.setLocalDescription(await pc.createAnswer());
  return pc.localDescription.sdp;
}
