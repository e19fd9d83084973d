// Files in chat: the composer's tray (attach by button, drag-and-drop or paste; each file is
// uploaded at once over HTTP with a progress bar, then sent with the message), and how a
// message's attachments show (image and PDF thumbnails inline, a download for every file).
import { el, morph } from "./dom.js";
import { formatter, t } from "./i18n.js";
import "./strings/attachments.js";
import { failureReason } from "./failures.js";
import { fetchWithToken, saveDownload } from "./http_api.js";

const DEFAULT_MAX_BYTES = 25 * 1024 * 1024;
const MAX_PER_MESSAGE = 10;

/** "2.4 MB", "830 kB", "45 bytes" in the interface language ("2.4MB", "830kB", "45바이트" in
 * Korean). kB and MB by their short symbols, which every language's ICU data localizes ("ko",
 * "кБ", "م.ب"); bytes by the language's own word, since ICU's short byte symbol is the English
 * "byte" in Korean and Japanese ("45byte"). */
export function fileSize(bytes) {
  const [value, unit, unitDisplay] =
    bytes >= 1e6
      ? [bytes / 1e6, "megabyte", "short"]
      : bytes >= 1e3
        ? [bytes / 1e3, "kilobyte", "short"]
        : [bytes, "byte", "long"];
  const format = { style: "unit", unit, unitDisplay, maximumFractionDigits: 1 };
  return formatter(Intl.NumberFormat, format).format(value);
}

/** The inbox preview of a message without text: "📎 name" or "📎 3 files". */
export function attachmentsPreview(message) {
  const files = message?.attachments || [];
  if (!files.length) return "";
  return files.length === 1 ? t("att.one", { name: files[0].name }) : t("att.many", { count: files.length });
}

/** Fetch a path with the token; an object URL of the body (cached per path). */
const objectUrls = new Map();
async function objectUrl(token, path) {
  if (!objectUrls.has(path)) {
    const loading = fetchWithToken(token, path).then(async (response) => URL.createObjectURL(await response.blob()));
    objectUrls.set(path, loading);
    loading.catch(() => objectUrls.delete(path));
  }
  return objectUrls.get(path);
}

/** The attachments of a message: thumbnails inline (images, PDFs), each file downloadable. */
export function attachmentsNode(message, token) {
  const files = message.attachments || [];
  if (!files.length) return null;
  return el("ul", { className: "attachments" }, ...files.map((file) => attachmentItem(file, token)));
}

function attachmentItem(file, token) {
  const path = `/api/attachments/${encodeURIComponent(file.id)}`;
  const note = el("span", { className: "note att-error", attrs: { role: "status" } });
  const download = async () => {
    note.textContent = "";
    try {
      await saveDownload(token, path, file.name);
    } catch (error) {
      note.textContent = t("att.download_failed", { name: file.name, error: failureReason(error) });
    }
  };
  const image = file.mime.startsWith("image/") && file.thumbnail;
  let preview = null;
  if (file.thumbnail) {
    const img = el("img", {
      className: "att-thumb",
      attrs: { alt: file.name, loading: "lazy" },
    });
    objectUrl(token, `${path}/thumbnail`)
      .then((url) => {
        img.src = url;
      })
      .catch(() => img.replaceWith(el("span", { className: "att-icon", text: "🖼" })));
    preview = el(
      "button",
      {
        className: "att-preview",
        title: image ? t("att.open") : t("att.download"),
        attrs: { type: "button", "aria-label": `${image ? t("att.open") : t("att.download")}: ${file.name}` },
        on: { click: image ? () => openImage(token, path, note) : download },
      },
      img,
    );
  }
  return el(
    "li",
    { className: `attachment${image ? " image" : ""}`, dataset: { attachmentId: file.id, mime: file.mime } },
    preview,
    el(
      "div",
      { className: "att-info" },
      preview ? null : el("span", { className: "att-icon", text: "📄", attrs: { "aria-hidden": "true" } }),
      el("span", { className: "att-name", text: file.name, title: file.name, attrs: { dir: "auto" } }),
      el("span", { className: "att-size", text: fileSize(file.size) }),
      el("button", {
        className: "link att-download",
        text: t("att.download"),
        attrs: { type: "button", "aria-label": `${t("att.download")}: ${file.name}` },
        on: { click: download },
      }),
    ),
    note,
  );
}

/** The full image in a new tab (fetched with the token; the tab gets an object URL). */
async function openImage(token, path, note) {
  const tab = window.open("", "_blank");
  try {
    const url = await objectUrl(token, path);
    if (tab) tab.location.href = url;
    else window.open(url, "_blank");
  } catch (error) {
    tab?.close();
    note.textContent = t("att.download_failed", { name: "", error: failureReason(error) });
  }
}

/**
 * The composer's tray of files being attached to the next message. `view`: the
 * ConversationView (its `id`, `app.token`, `input`). Files upload as soon as they are chosen;
 * `ready()` lists the uploaded attachments, `busy()` says whether some are still uploading.
 */
export class AttachTray {
  constructor(view, { tray, button, input, dropZone, composer }) {
    this.view = view;
    this.tray = tray;
    this.input = input;
    this.dropZone = dropZone;
    this.items = []; // {key, file, status: uploading|ready|failed, progress, attachment, error, xhr}
    this.maxBytes = DEFAULT_MAX_BYTES;
    this.changed = () => {};
    fetch("/api/client-config")
      .then((r) => (r.ok ? r.json() : {}))
      .then((config) => {
        if (config.max_attachment_bytes) this.maxBytes = config.max_attachment_bytes;
      })
      .catch(() => {});
    button.addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      this.add([...input.files]);
      input.value = "";
    });
    let depth = 0;
    dropZone.addEventListener("dragenter", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth += 1;
      dropZone.classList.add("dropping");
    });
    dropZone.addEventListener("dragover", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    dropZone.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) dropZone.classList.remove("dropping");
    });
    dropZone.addEventListener("drop", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth = 0;
      dropZone.classList.remove("dropping");
      this.add([...event.dataTransfer.files]);
    });
    composer.addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files || [])];
      if (!files.length) return;
      event.preventDefault();
      this.add(files);
    });
  }

  /** Start uploading files to the open conversation. */
  add(files) {
    if (!this.view.id) return;
    for (const file of files) {
      const item = { key: Math.random().toString(36).slice(2), file, status: "uploading", progress: 0 };
      if (this.items.filter((i) => i.status !== "failed").length >= MAX_PER_MESSAGE) {
        item.status = "failed";
        item.error = t("att.too_many", { count: MAX_PER_MESSAGE });
      } else if (file.size > this.maxBytes) {
        item.status = "failed";
        item.error = t("att.too_large", { name: file.name, max: fileSize(this.maxBytes) });
      } else if (!file.size) {
        item.status = "failed";
        item.error = t("att.empty", { name: file.name });
      }
      this.items.push(item);
      if (item.status === "uploading") this.upload(item, this.view.id);
    }
    this.render();
  }

  upload(item, conversationId) {
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    xhr.open("POST", `/api/conversations/${encodeURIComponent(conversationId)}/attachments`);
    xhr.setRequestHeader("Authorization", `Bearer ${this.view.app.token}`);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      item.progress = event.loaded / event.total;
      this.renderItem(item);
    });
    xhr.addEventListener("load", () => {
      const body = xhr.response || {};
      if (xhr.status === 201 && body.attachment) {
        item.status = "ready";
        item.attachment = body.attachment;
      } else {
        item.status = "failed";
        item.error = this.refusal(item.file, xhr.status, body);
      }
      this.render();
    });
    xhr.addEventListener("error", () => {
      item.status = "failed";
      item.error = t("att.failed", { name: item.file.name, error: t("att.network") });
      this.render();
    });
    const form = new FormData();
    form.append("file", item.file, item.file.name);
    xhr.send(form);
  }

  /** Why the server refused a file, in the reader's language. */
  refusal(file, status, body) {
    if (status === 413) return t("att.too_large", { name: file.name, max: fileSize(this.maxBytes) });
    if (status === 415) return t("att.refused_type", { name: file.name });
    return t("att.failed", { name: file.name, error: body?.error?.message || `HTTP ${status}` });
  }

  remove(item) {
    item.xhr?.abort();
    this.items = this.items.filter((other) => other !== item);
    this.render();
  }

  /** Forget everything (another conversation opened, or the message was sent). */
  clear({ abort = true } = {}) {
    if (abort) for (const item of this.items) if (item.status === "uploading") item.xhr?.abort();
    this.items = [];
    this.render();
  }

  ready() {
    return this.items.filter((i) => i.status === "ready").map((i) => i.attachment);
  }

  busy() {
    return this.items.some((i) => i.status === "uploading");
  }

  render() {
    this.tray.hidden = !this.items.length;
    this.tray.replaceChildren(...this.items.map((item) => this.itemNode(item)));
    this.changed();
  }

  /** Show `item`'s progress in place: its nodes (the × button too) stay, so a press on × that
   * a progress event lands in the middle of still cancels the upload. */
  renderItem(item) {
    const old = this.tray.querySelector(`[data-key="${item.key}"]`);
    if (old) morph(old, this.itemNode(item));
  }

  itemNode(item) {
    const percent = Math.round(item.progress * 100);
    const status =
      item.status === "uploading"
        ? el(
            "span",
            { className: "att-progress" },
            el("progress", {
              attrs: { max: "100", value: String(percent), "aria-label": t("att.uploading", { percent }) },
            }),
            el("span", { text: t("att.uploading", { percent }) }),
          )
        : item.status === "failed"
          ? el("span", { className: "att-error", text: item.error, attrs: { role: "alert" } })
          : el("span", { className: "att-size", text: `✓ ${fileSize(item.attachment.size)}` });
    return el(
      "li",
      { className: `tray-item ${item.status}`, dataset: { key: item.key } },
      el("span", { className: "att-name", text: item.file.name, title: item.file.name, attrs: { dir: "auto" } }),
      status,
      el("button", {
        className: "link tray-remove",
        text: "×",
        title: t("att.remove"),
        attrs: { type: "button", "aria-label": `${t("att.remove")}: ${item.file.name}` },
        on: { click: () => this.remove(item) },
      }),
    );
  }
}

function hasFiles(event) {
  return [...(event.dataTransfer?.types || [])].includes("Files");
}
