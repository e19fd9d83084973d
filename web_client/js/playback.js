// Playing received media under the browser's autoplay policy, shared by the call and the tour
// view. A page opened without a click (a share link, a reload) may not start sound: the browser
// refuses `play()` with NotAllowedError. Then the video plays muted and a "Tap for sound" button
// appears; a click on it unmutes (the click is the gesture the browser wants). If even muted
// playback is refused, the button offers "Tap to play". A refused play() is never swallowed.

import { el } from "./dom.js";

/** The browser's autoplay refusal (anything else: the source changed meanwhile, or a failure). */
function refused(error) {
  return error?.name === "NotAllowedError";
}

/** Replaced source, paused meanwhile: a new play() follows, nothing to show. */
function interrupted(error) {
  return error?.name === "AbortError";
}

export class SoundGate {
  /**
   * `labels()`: {sound, play} — the button's text (the interface language, read at each show).
   * `id`: the button's element id.
   */
  constructor(id, labels) {
    this.labels = labels;
    this.videos = new Set(); // videos playing muted because sound was refused (or not playing)
    this.needsPlay = false; // even muted playback was refused
    this.node = el("button", {
      className: "sound-gate",
      attrs: { type: "button", id },
      on: { click: () => this.unmute() },
    });
    this.node.hidden = true;
  }

  /** Play `video` with sound; when the browser refuses, muted, and show the button. */
  async play(video) {
    if (this.videos.has(video)) {
      // Already refused: unmuting again without a click would only pause it.
      await this.playMutedOnce(video);
      return;
    }
    video.muted = false;
    try {
      await video.play();
      this.videos.delete(video);
      this.render();
      return;
    } catch (error) {
      if (interrupted(error)) return;
      if (!refused(error)) console.warn("video.play() failed", error);
    }
    // No sound without a gesture: start muted (browsers allow that) and ask for a tap.
    this.videos.add(video);
    await this.playMutedOnce(video);
  }

  async playMutedOnce(video) {
    video.muted = true;
    try {
      await video.play();
    } catch (error) {
      if (!interrupted(error)) {
        console.warn("muted video.play() failed too", error);
        this.needsPlay = true;
      }
    }
    this.render();
  }

  /** The user's click: sound on (and play) for every video we muted. */
  async unmute() {
    const videos = [...this.videos];
    this.videos.clear();
    this.needsPlay = false;
    for (const video of videos) {
      if (!video.isConnected) continue;
      video.muted = false;
      try {
        await video.play();
      } catch (error) {
        if (interrupted(error)) continue;
        console.warn("video.play() after a click failed", error);
        this.videos.add(video);
        this.needsPlay = this.needsPlay || video.paused;
      }
    }
    this.render();
  }

  /** Forget `video` (its tile went away), or all of them. */
  forget(video = null) {
    if (video) this.videos.delete(video);
    else this.videos.clear();
    if (!this.videos.size) this.needsPlay = false;
    this.render();
  }

  /** Whether the button is up (some video waits for a click). */
  get waiting() {
    return this.videos.size > 0;
  }

  render() {
    for (const video of [...this.videos]) if (!video.isConnected) this.videos.delete(video);
    const labels = this.labels();
    this.node.hidden = !this.videos.size;
    this.node.textContent = this.needsPlay ? labels.play : labels.sound;
  }
}

/** Play a muted video (our own camera's preview): allowed without a click; a failure is logged. */
export function playMuted(video) {
  video.muted = true;
  video.play().catch((error) => {
    if (!interrupted(error)) console.warn("preview play() failed", error);
  });
}
