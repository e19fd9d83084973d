// The open conversation's glossary: fixed translations of trade terms ("bolts" -> "pernos"),
// seen and edited by its participants through glossary.get / glossary.set. The server uses it
// for the next messages and call subtitles.
import { button, byId, el, showMessage } from "./dom.js";
import { t } from "./i18n.js";
import "./strings/conversation.js";

export class GlossaryPanel {
  /** `app`: {connection, conversation}. */
  constructor(app) {
    this.app = app;
    this.node = byId("glossary");
    this.toggleButton = byId("glossary-toggle");
    this.toggleButton.addEventListener("click", () => (this.node.hidden ? this.show() : this.hide()));
  }

  /** The conversation changed: close the panel. */
  conversationChanged() {
    this.hide();
  }

  hide() {
    this.node.hidden = true;
    this.toggleButton.setAttribute("aria-expanded", "false");
  }

  async show() {
    const cid = this.app.conversation.id;
    if (!cid) return;
    this.node.hidden = false;
    this.toggleButton.setAttribute("aria-expanded", "true");
    this.rows = el("tbody");
    this.status = el("p", { className: "hint", attrs: { role: "status" } });
    this.error = el("p", { className: "error", attrs: { role: "alert" } });
    this.error.hidden = true;
    const form = el(
      "form",
      { className: "glossary-form", on: { submit: (event) => this.save(event, cid) } },
      el(
        "table",
        { className: "glossary-table" },
        el(
          "thead",
          {},
          el("tr", {}, el("th", { text: t("glossary.term") }), el("th", { text: t("glossary.translation") }), el("th")),
        ),
        this.rows,
      ),
      el(
        "div",
        { className: "glossary-actions" },
        button("quiet", t("glossary.add"), "glossary-add", () => this.addRow("", "").querySelector("input").focus()),
        el("button", { text: t("glossary.save"), attrs: { type: "submit", id: "glossary-save" } }),
      ),
    );
    this.node.replaceChildren(
      el("h3", { text: t("glossary.title"), attrs: { id: "glossary-title" } }),
      el("p", { className: "hint", text: t("glossary.hint") }),
      form,
      this.status,
      this.error,
    );
    try {
      const { terms } = await this.app.connection.request("glossary.get", { conversation_id: cid });
      if (cid !== this.app.conversation.id) return;
      for (const [term, fixed] of Object.entries(terms)) this.addRow(term, fixed ?? "");
      if (!Object.keys(terms).length) this.addRow("", "");
    } catch (err) {
      showMessage(this.error, t("glossary.load_failed", { error: err.message }));
    }
  }

  addRow(term, fixed) {
    const row = el(
      "tr",
      { className: "glossary-row" },
      el("td", {}, el("input", { className: "glossary-term", attrs: { "aria-label": t("glossary.term"), maxlength: 100, value: term, dir: "auto" } })),
      el("td", {}, el("input", { className: "glossary-fixed", attrs: { "aria-label": t("glossary.translation"), maxlength: 100, value: fixed, dir: "auto" } })),
      el(
        "td",
        {},
        el("button", {
          className: "link",
          text: t("glossary.remove"),
          attrs: { type: "button" },
          on: { click: () => row.remove() },
        }),
      ),
    );
    this.rows.append(row);
    return row;
  }

  async save(event, cid) {
    event.preventDefault();
    const terms = {};
    for (const row of this.rows.querySelectorAll("tr")) {
      const term = row.querySelector(".glossary-term").value.trim();
      const fixed = row.querySelector(".glossary-fixed").value.trim();
      if (term) terms[term] = fixed || null;
    }
    showMessage(this.error, "");
    try {
      const ack = await this.app.connection.request("glossary.set", { conversation_id: cid, terms });
      this.status.textContent = t("glossary.saved", { count: Object.keys(ack.terms).length });
    } catch (err) {
      showMessage(this.error, t("glossary.failed", { error: err.message }));
    }
  }
}
