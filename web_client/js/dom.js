// Tiny DOM helpers. User text only ever becomes text nodes (never HTML).

/**
 * Create an element. `props`: className, text, title, attrs {name: value}, dataset, on {event: fn}.
 * Children: nodes or strings (strings become text nodes).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  if (props.className) node.className = props.className;
  if (props.text !== undefined) node.textContent = String(props.text);
  if (props.title) node.title = String(props.title);
  for (const [name, value] of Object.entries(props.attrs || {})) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, String(value));
  }
  Object.assign(node.dataset, props.dataset || {});
  for (const [event, handler] of Object.entries(props.on || {})) node.addEventListener(event, handler);
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/**
 * People's own words (names, titles, messages) inside interface text: a `<bdi>`, so an Arabic
 * name in a Vietnamese sentence, or "M8x30 bolts, 5000 pcs." in an Arabic one, keeps its own
 * order and punctuation and does not reorder the words around it.
 */
export function bdi(text) {
  return el("bdi", { text });
}

/** The element with this id (throws if the page lacks it). */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} missing from the page`);
  return node;
}

/** Show or hide a message element; text is set as text. */
export function showMessage(node, text) {
  node.textContent = text || "";
  node.hidden = !text;
}

/** A `<button type="button">` with a class, its text, an id and a click handler. */
export function button(className, text, id, onClick) {
  return el("button", { className, text, attrs: { type: "button", id }, on: { click: onClick } });
}

/**
 * Make `target` like `source` (built the same way), changing only what differs: attributes, text
 * and children, in place. The node under the reader's pointer stays the same node, so a press that
 * an update lands in the middle of still ends in a click. Listeners are not copied from `source`:
 * a kept node keeps its own (so `source`'s handlers must do what the target's already do).
 */
export function morph(target, source) {
  if (target.nodeType !== Node.ELEMENT_NODE) {
    if (target.nodeValue !== source.nodeValue) target.nodeValue = source.nodeValue;
    return;
  }
  for (const { name } of [...target.attributes]) {
    if (!source.hasAttribute(name)) target.removeAttribute(name);
  }
  for (const { name, value } of source.attributes) {
    if (target.getAttribute(name) !== value) target.setAttribute(name, value);
  }
  const have = [...target.childNodes];
  const want = [...source.childNodes];
  want.forEach((node, i) => {
    const old = have[i];
    if (old && old.nodeName === node.nodeName) morph(old, node);
    else if (old) old.replaceWith(node);
    else target.append(node);
  });
  for (const extra of have.slice(want.length)) extra.remove();
}
