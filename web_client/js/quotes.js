// Quotes in a conversation: the form (a priced quote, a request for quotation, a counter-offer)
// and the card each `kind: "quote"` history entry shows as — products, payment terms and notes
// in the reader's language with the original one click away; units, currencies, Incoterms and
// places exactly as written; numbers (every decimal kept) and dates in the reader's format.
// Accept, decline and counter answer the latest version.
import { bdi, byId, el } from "./dom.js";
import { formatter, t } from "./i18n.js";
import "./strings/quotes.js";
import { shortTime } from "./messages.js";
import { failureReason } from "./failures.js";
import { saveDownload } from "./http_api.js";
import { untranslatedText } from "./translation_notes.js";

// The server's lists (server/trade/codes.py; docs/protocol.md, Quotes).
export const UNITS = ["pcs", "set", "pair", "dozen", "box", "carton", "bag", "roll", "sheet", "pallet", "kg", "g",
  "t", "lb", "m", "cm", "mm", "ft", "in", "m2", "m3", "l", "ml", "20ft", "40ft", "40hq"];
export const INCOTERMS = ["EXW", "FCA", "CPT", "CIP", "DAP", "DPU", "DDP", "FAS", "FOB", "CFR", "CIF"];
// Offered in the currency field (any ISO 4217 code may be typed; the server checks it).
const CURRENCIES = ["USD", "EUR", "CNY", "JPY", "KRW", "GBP", "HKD", "TWD", "SGD", "INR", "IDR", "VND", "THB",
  "MYR", "PHP", "AUD", "CAD", "MXN", "BRL", "CLP", "COP", "PEN", "ARS", "TRY", "RUB", "AED", "SAR", "EGP", "ZAR",
  "CHF", "SEK", "NOK", "DKK", "PLN", "CZK"];
const DEFAULT_VALID_DAYS = 30;

/** A decimal string of the server ("1234.50") in the interface language ("1.234,50" in German),
 * with exactly its decimals (the string is formatted, not a rounded float); anything else as is. */
function decimal(text) {
  const match = /^-?\d+(?:\.(\d+))?$/.exec(String(text ?? ""));
  if (!match) return text ?? "";
  const digits = match[1]?.length || 0;
  return formatter(Intl.NumberFormat, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(text);
}

/** A `YYYY-MM-DD` day in the interface language ("Dec 31, 2026", "2026. 12. 31."); anything else
 * as is. */
function calendarDay(iso) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(iso || "")) return iso;
  const date = new Date(`${iso}T00:00:00Z`);
  if (Number.isNaN(date.getTime())) return iso;
  return formatter(Intl.DateTimeFormat, { dateStyle: "medium", timeZone: "UTC" }).format(date);
}

let counter = 0;
function newClientId() {
  counter += 1;
  return `q${Date.now().toString(36)}${counter}${Math.random().toString(36).slice(2, 6)}`;
}

/** A version's texts as a reader of `lang` sees them: `{items, payment_terms, notes, translated,
 * missing, note}` (the originals where no translation exists, `missing` then, with the note). */
export function readerTexts(version, lang, original = false) {
  const own = { items: version.items.map((i) => i.product), payment_terms: version.payment_terms,
    notes: version.notes, translated: false, missing: false, note: null };
  if (original || !lang || version.lang === lang) return own;
  const view = version.translations?.[lang];
  if (!view) return { ...own, missing: true, note: version.translation_error?.[lang] || null };
  return {
    items: own.items.map((text, n) => view.items?.[n] || text),
    payment_terms: view.payment_terms || own.payment_terms,
    notes: view.notes || own.notes,
    translated: true,
    missing: false,
    note: null,
  };
}

/** The inbox preview of a quote entry ("📄 Quote v2 · Accepted"). */
export function quotePreview(message) {
  const title = t(message.quote?.kind === "rfq" || message.action === "request" ? "quote.title_rfq" : "quote.title_quote");
  return `📄 ${title} v${message.version} · ${t(`quote.status_${message.status}`)}`;
}

export class QuoteDesk {
  /** `app`: {me, lang, token, connection, conversation}. */
  constructor(app) {
    this.app = app;
    this.panel = byId("quote-panel");
    this.toggleButton = byId("quote-toggle");
    this.toggleButton.addEventListener("click", () => (this.panel.hidden ? this.openForm() : this.closeForm()));
    this.state = new Map(); // quote id -> {status, version, kind, author, entry} from the newest entry seen
    this.original = new Set(); // entry ids shown in the original
    this.answered = new Set(); // ids of the requests a quote has answered
  }

  /** The conversation changed: close the form, forget what we knew. */
  conversationChanged() {
    this.closeForm();
    this.state.clear();
    this.original.clear();
    this.answered.clear();
  }

  // ----- what the entries tell ---------------------------------------------------------------

  /** Take a quote entry's news (the newest entry of a quote decides its state); the view
   * re-renders the quote's other entries so their status and buttons follow. */
  learned(view, message) {
    const answers = message.quote?.in_reply_to;
    if (answers && !this.answered.has(answers)) {
      this.answered.add(answers);
      for (const [id, other] of view.messages) {
        if (other.kind === "quote" && other.quote_id === answers) view.rerender(id);
      }
    }
    const known = this.state.get(message.quote_id);
    if (known && known.entry >= message.id) return;
    const version = message.quote;
    this.state.set(message.quote_id, {
      status: message.status,
      version: message.version,
      kind: version?.kind || known?.kind || "quote",
      author: version ? version.by.id : known?.author,
      entry: message.id,
    });
    for (const [id, other] of view.messages) {
      if (other.kind === "quote" && other.quote_id === message.quote_id && id !== message.id) view.rerender(id);
    }
  }

  /** The list item of a quote entry: a card for a version, a line for accept / decline. */
  node(view, message) {
    const mine = message.sender.id === this.app.me.id;
    const meta = el(
      "div",
      { className: "msg-meta" },
      view.senderNode(message, mine),
      el("time", { text: shortTime(message.ts), attrs: { datetime: message.ts } }),
    );
    const attrs = { dataset: { id: String(message.id), quoteId: message.quote_id, action: message.action } };
    if (!message.quote) {
      const key = message.action === "accept" ? "quote.accepted_by" : "quote.declined_by";
      const who = mine ? t("conv.you") : view.nameOf(message.sender);
      return el(
        "li",
        { className: `msg quote-event ${message.action}`, ...attrs },
        meta,
        el("p", { className: "msg-text", text: `${message.action === "accept" ? "✅" : "✖"} ${t(key, { name: who, n: message.version })}` }),
      );
    }
    return el("li", { className: `msg quote-card ${mine ? "mine" : "theirs"}`, ...attrs }, meta, this.card(view, message));
  }

  card(view, message) {
    const version = message.quote;
    const lang = this.app.lang;
    const showOriginal = this.original.has(message.id);
    const texts = readerTexts(version, lang, showOriginal);
    const textLang = texts.translated ? lang : version.lang;
    const state = this.state.get(message.quote_id) || { status: message.status, version: message.version };
    const latest = state.version === version.version;
    let status = !latest ? "superseded" : state.status;
    if (status === "open" && version.kind === "rfq" && this.answered.has(message.quote_id)) status = "answered";
    const title = version.kind === "rfq" ? "quote.title_rfq" : version.answers ? "quote.title_counter" : "quote.title_quote";
    const priced = version.kind !== "rfq";
    const head = el(
      "div",
      { className: "quote-head" },
      el("strong", { text: `📄 ${t(title)} · v${version.version}` }),
      el("span", {
        className: `quote-status ${status}`,
        text: status === "superseded" ? t("quote.status_superseded", { n: state.version }) : t(`quote.status_${status}`),
      }),
    );
    const columns = [t("quote.product"), t("quote.quantity"), t("quote.unit")];
    if (priced) columns.push(t("quote.unit_price"), t("quote.amount"));
    const rows = version.items.map((item, n) => {
      const cells = [
        el("td", { className: "quote-product", attrs: { lang: textLang } }, bdi(texts.items[n])),
        el("td", { className: "num", text: decimal(item.quantity) }),
        el("td", { text: item.unit }),
      ];
      if (priced) {
        cells.push(el("td", { className: "num", text: `${decimal(item.unit_price)} ${item.currency}` }));
        cells.push(el("td", { className: "num", text: `${decimal(item.amount)} ${item.currency}` }));
      }
      return el("tr", {}, ...cells);
    });
    const table = el(
      "table",
      { className: priced ? "quote-items priced" : "quote-items" },
      el("thead", {}, el("tr", {}, ...columns.map((c) => el("th", { text: c })))),
      el("tbody", {}, ...rows),
    );
    const totals = Object.entries(version.totals || {}).map(([currency, total]) =>
      el("p", { className: "quote-total", text: `${t("quote.total")}: ${decimal(total)} ${currency}` }),
    );
    const terms = el("dl", { className: "quote-terms" });
    const term = (label, value, textual = false) => {
      if (value === null || value === undefined || value === "") return;
      terms.append(el("dt", { text: label }), el("dd", { attrs: textual ? { lang: textLang } : {} }, bdi(value)));
    };
    term(t("quote.incoterm"), `${version.incoterm}${version.place ? ` ${version.place}` : ""}`);
    term(t("quote.lead_time"), t("quote.days", { n: version.lead_time_days }));
    term(t("quote.valid_until"), calendarDay(version.valid_until));
    term(t("quote.payment_terms"), texts.payment_terms, true);
    term(t("quote.notes"), texts.notes, true);
    const foot = el("div", { className: "quote-actions" });
    const note = el("span", { className: "note quote-note", attrs: { role: "status" } });
    if (showOriginal || texts.translated) {
      foot.append(
        el("button", {
          className: "link toggle-original",
          text: showOriginal ? t("conv.show_translation") : t("conv.show_original"),
          attrs: { type: "button", "aria-pressed": showOriginal ? "true" : "false" },
          on: { click: () => this.toggleOriginal(view, message.id) },
        }),
      );
    }
    const answerable = latest && state.status === "open" && version.by.id !== this.app.me.id;
    if (answerable && priced) {
      foot.append(
        this.action("quote-accept", t("quote.accept"), () => this.respond(message, "accept", note)),
        this.action("quote-counter quiet", t("quote.counter"), () => this.openForm({ counter: message })),
      );
    }
    if (answerable && !priced) {
      foot.append(this.action("quote-reply", t("quote.reply"), () => this.openForm({ reply: message })));
    }
    if (answerable) foot.append(this.action("quote-decline quiet", t("quote.decline"), () => this.respond(message, "decline", note)));
    foot.append(
      el("button", {
        className: "link quote-pdf",
        text: t("quote.pdf"),
        attrs: { type: "button" },
        on: { click: () => this.download(message.quote_id, version.version, note) },
      }),
    );
    return el(
      "div",
      { className: "quote-body" },
      head,
      table,
      ...totals,
      terms,
      texts.missing ? el("p", { className: "note untranslated", text: untranslatedText(texts.note, version.lang, lang) }) : null,
      foot,
      note,
    );
  }

  action(className, text, onClick) {
    return el("button", { className, text, attrs: { type: "button" }, on: { click: onClick } });
  }

  toggleOriginal(view, id) {
    if (this.original.has(id)) this.original.delete(id);
    else this.original.add(id);
    view.rerender(id);
  }

  /** Accept or decline the version the card shows (the server refuses if it changed). */
  async respond(message, action, note) {
    note.textContent = "";
    try {
      const ack = await this.app.connection.requestRetrying("quote.respond", {
        conversation_id: message.conversation_id,
        client_id: newClientId(),
        quote_id: message.quote_id,
        action,
        version: message.quote.version,
      });
      this.app.conversation.onMessage(ack.message);
    } catch (error) {
      note.textContent = errorText(error);
    }
  }

  /** Save the quote as the reader's PDF (their language, the original beside it). */
  async download(quoteId, version, note) {
    note.textContent = "";
    const cid = this.app.conversation.id;
    const url = `/api/conversations/${encodeURIComponent(cid)}/quotes/${encodeURIComponent(quoteId)}?format=pdf`;
    try {
      await saveDownload(this.app.token, url, `quote-${quoteId}-v${version}-${this.app.lang}.pdf`);
    } catch (error) {
      note.textContent = t("quote.download_failed", { error: failureReason(error) });
    }
  }

  // ----- the form -----------------------------------------------------------------------------

  closeForm() {
    this.panel.hidden = true;
    this.panel.replaceChildren();
    this.toggleButton.setAttribute("aria-expanded", "false");
  }

  /** Open the form: a new quote (suppliers) or request (buyers); `{counter: entry}` for a
   * counter-offer to that version, `{reply: entry}` for a quote answering that request. Prefilled
   * from the version in the reader's language (the server translates it for the other side). */
  openForm({ counter = null, reply = null } = {}) {
    if (!this.app.conversation.id) return;
    const base = (counter || reply)?.quote;
    const texts = base ? readerTexts(base, this.app.lang) : null;
    this.mode = counter ? "counter" : reply ? "reply" : this.app.me.role === "buyer" ? "rfq" : "quote";
    this.target = counter || reply;
    this.clientId = newClientId();
    this.panel.hidden = false;
    this.toggleButton.setAttribute("aria-expanded", "true");
    const title = {
      counter: t("quote.counter_title", { n: base?.version }),
      reply: t("quote.reply_title"),
      rfq: t("quote.new_rfq"),
      quote: t("quote.new_quote"),
    }[this.mode];
    this.rows = el("tbody");
    this.error = el("p", { className: "error", attrs: { role: "alert" } });
    this.error.hidden = true;
    const kind = !counter && !reply
      ? el(
          "label",
          { className: "inline" },
          el("input", {
            attrs: { type: "checkbox", id: "quote-priced", ...(this.mode === "quote" ? { checked: "" } : {}) },
            on: { change: (event) => this.setPriced(event.target.checked) },
          }),
          el("span", { text: t("quote.with_prices") }),
        )
      : null;
    const valid = new Date(Date.now() + DEFAULT_VALID_DAYS * 86400000).toISOString().slice(0, 10);
    const field = (name, labelKey, input) => el("label", { dataset: { field: name } }, el("span", { text: t(labelKey) }), input);
    this.fields = {
      incoterm: el("select", { attrs: { id: "quote-incoterm" } }, ...INCOTERMS.map((code) => el("option", { text: code, attrs: { value: code } }))),
      place: el("input", { attrs: { id: "quote-place", maxlength: 100, dir: "auto" } }),
      lead_time_days: el("input", { attrs: { id: "quote-lead", type: "number", min: 0, max: 3650, step: 1, value: base?.lead_time_days ?? 30 } }),
      valid_until: el("input", { attrs: { id: "quote-valid", type: "date", value: valid } }),
      payment_terms: el("input", { attrs: { id: "quote-payment", maxlength: 500, dir: "auto" } }),
      notes: el("textarea", { attrs: { id: "quote-notes", rows: 2, maxlength: 2000, dir: "auto" } }),
    };
    this.fields.incoterm.value = base?.incoterm || "FOB";
    this.fields.place.value = base?.place || "";
    this.fields.payment_terms.value = texts?.payment_terms || "";
    const form = el(
      "form",
      { className: "quote-form", attrs: { id: "quote-form" }, on: { submit: (event) => this.submit(event) } },
      el("h3", { text: title, attrs: { id: "quote-form-title" } }),
      kind,
      el(
        "table",
        { className: "quote-lines" },
        el("thead", {}, el("tr", {}, ...["quote.product", "quote.quantity", "quote.unit", "quote.unit_price", "quote.currency"]
          .map((key) => el("th", { text: t(key), dataset: { column: key.slice(6) } })), el("th"))),
        this.rows,
      ),
      el("button", { className: "quiet", text: t("quote.add_line"), attrs: { type: "button", id: "quote-add-line" }, on: { click: () => this.addLine() } }),
      el(
        "div",
        { className: "quote-fields" },
        field("incoterm", "quote.incoterm", this.fields.incoterm),
        field("place", "quote.place", this.fields.place),
        field("lead_time_days", "quote.lead_time_days", this.fields.lead_time_days),
        field("valid_until", "quote.valid_until", this.fields.valid_until),
        field("payment_terms", "quote.payment_terms", this.fields.payment_terms),
        field("notes", "quote.notes", this.fields.notes),
      ),
      this.error,
      el(
        "div",
        { className: "quote-form-actions" },
        el("button", { text: t(this.mode === "counter" ? "quote.send_counter" : this.mode === "rfq" ? "quote.send_rfq" : "quote.send"), attrs: { type: "submit", id: "quote-submit" } }),
        el("button", { className: "quiet", text: t("quote.cancel"), attrs: { type: "button" }, on: { click: () => this.closeForm() } }),
      ),
      el("datalist", { attrs: { id: "quote-currencies" } }, ...CURRENCIES.map((c) => el("option", { attrs: { value: c } }))),
    );
    this.panel.replaceChildren(form);
    const items = base ? base.items.map((item, n) => ({ ...item, product: texts.items[n] })) : [{}];
    for (const item of items) this.addLine(item);
    this.setPriced(this.mode !== "rfq");
    this.rows.querySelector("input")?.focus();
  }

  setPriced(priced) {
    this.priced = priced;
    this.panel.querySelector(".quote-form")?.classList.toggle("unpriced", !priced);
    const submit = this.panel.querySelector("#quote-submit");
    if (submit && this.mode !== "counter") submit.textContent = t(priced ? "quote.send" : "quote.send_rfq");
  }

  addLine(item = {}) {
    const n = this.rows.children.length;
    const input = (name, attrs) => el("input", { className: `quote-${name}`, dataset: { field: `items[${n}].${name}` }, attrs });
    const unit = el("select", { className: "quote-unit", dataset: { field: `items[${n}].unit` } },
      ...UNITS.map((code) => el("option", { text: code, attrs: { value: code } })));
    unit.value = item.unit || "pcs";
    const row = el(
      "tr",
      {},
      el("td", {}, input("product", { maxlength: 200, value: item.product || "", dir: "auto", placeholder: t("quote.product"), "aria-label": t("quote.product") })),
      el("td", {}, input("quantity", { inputmode: "decimal", value: item.quantity || "", size: 8, placeholder: t("quote.quantity"), "aria-label": t("quote.quantity") })),
      el("td", {}, unit),
      el("td", { className: "priced" }, input("unit_price", { inputmode: "decimal", value: item.unit_price || "", size: 8, placeholder: t("quote.unit_price"), "aria-label": t("quote.unit_price") })),
      el("td", {}, input("currency", { list: "quote-currencies", maxlength: 3, size: 4, value: item.currency || "USD", "aria-label": t("quote.currency") })),
      el("td", {}, el("button", { className: "link", text: "✕", title: t("quote.remove_line"), attrs: { type: "button", "aria-label": t("quote.remove_line") },
        on: { click: () => { if (this.rows.children.length > 1) row.remove(); } } })),
    );
    this.rows.append(row);
    return row;
  }

  /** The payload's terms from the form, as typed (the server checks and computes). */
  terms() {
    const items = [...this.rows.children].map((row) => {
      const value = (name) => row.querySelector(`.quote-${name}`).value.trim();
      const item = { product: value("product"), quantity: value("quantity").replace(",", "."), unit: value("unit") };
      const currency = value("currency").toUpperCase();
      if (this.priced) {
        item.unit_price = value("unit_price").replace(",", ".");
        item.currency = currency;
      } else if (currency) {
        item.currency = currency;
      }
      return item;
    });
    const terms = {
      items,
      incoterm: this.fields.incoterm.value,
      lead_time_days: Number.parseInt(this.fields.lead_time_days.value, 10),
      valid_until: this.fields.valid_until.value,
    };
    for (const name of ["place", "payment_terms", "notes"]) {
      const value = this.fields[name].value.trim();
      if (value) terms[name] = value;
    }
    return terms;
  }

  async submit(event) {
    event.preventDefault();
    const cid = this.app.conversation.id;
    const payload = { conversation_id: cid, client_id: this.clientId, ...this.terms() };
    let name = this.priced ? "quote.send" : "quote.request";
    if (this.mode === "counter") {
      name = "quote.respond";
      Object.assign(payload, { quote_id: this.target.quote_id, action: "counter", version: this.target.quote.version });
    } else if (this.mode === "reply") {
      payload.in_reply_to = this.target.quote_id;
    }
    for (const node of this.panel.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
    this.error.hidden = true;
    const submit = this.panel.querySelector("#quote-submit");
    submit.disabled = true;
    try {
      const ack = await this.app.connection.requestRetrying(name, payload);
      this.closeForm();
      this.app.conversation.onMessage(ack.message);
    } catch (error) {
      this.error.textContent = errorText(error, this.fieldLabel(error.field));
      this.error.hidden = false;
      const bad = error.field && this.panel.querySelector(`[data-field="${CSS.escape(error.field)}"]`);
      const input = bad && (bad.matches("input, select, textarea") ? bad : bad.querySelector("input, select, textarea"));
      if (input) {
        input.setAttribute("aria-invalid", "true");
        input.focus();
      }
    } finally {
      submit.disabled = false;
    }
  }

  /** A field the server named (`items[1].unit_price`) in the reader's words ("Unit price, line 2"). */
  fieldLabel(field) {
    const named = ["product", "quantity", "unit", "unit_price", "currency", "incoterm", "place", "lead_time_days",
      "valid_until", "payment_terms", "notes"];
    const line = /^items\[(\d+)\]\.(\w+)$/.exec(field || "");
    if (line && named.includes(line[2])) return `${t(`quote.${line[2]}`)} · ${t("quote.line", { n: Number(line[1]) + 1 })}`;
    if (field === "items") return t("quote.product");
    return named.includes(field) ? t(`quote.${field}`) : "";
  }
}

/** An error ack as the reader reads it (never the server's English). */
function errorText(error, field = "") {
  if (error.code === "invalid" && field) return t("quote.error_field", { field });
  if (error.code === "conflict") return t("quote.error_conflict");
  if (error.code === "forbidden") return t("quote.error_forbidden");
  return t("quote.error_other", { code: error.code || "?" });
}
