// DOM helpers shared by Car Studio's elements. Static markup comes from the page's
// server-rendered <template> elements; whatever a CSV or a person typed is only ever set as
// text, never as HTML, so it is shown literally.

/** A fresh copy of the page's <template id="…">, ready to fill and insert. */
export function cloneTemplate(id) {
  const template = document.getElementById(id);
  if (!(template instanceof HTMLTemplateElement)) {
    throw new Error(`Car Studio's page has no <template id="${id}">.`);
  }
  // Imported into this document so custom elements inside it are upgraded as they are made.
  return document.importNode(template.content, true);
}

/**
 * The nodes of `root` marked data-part="…", by name in camelCase ("row-count" -> rowCount).
 * Called on a fresh clone, before nested elements have filled themselves in.
 */
export function partsOf(root) {
  const parts = {};
  for (const node of root.querySelectorAll("[data-part]")) {
    const name = node.dataset.part.replace(/-([a-z])/g, (_, letter) => letter.toUpperCase());
    if (!(name in parts)) parts[name] = node;
  }
  return parts;
}

/** A new element with an optional class and text, for the rows of dynamic lists. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

/** Fire a bubbling event from `target`. */
export function emit(target, type, detail = {}) {
  target.dispatchEvent(new CustomEvent(type, { bubbles: true, detail }));
}

/** Show a button as working (disabled, spinner) or not, with an optional new label. */
export function setBusy(button, busy, label) {
  button.disabled = busy;
  button.setAttribute("aria-busy", busy ? "true" : "false");
  const text = button.querySelector(".button__label");
  if (label != null && text) text.textContent = label;
}

/**
 * Fill an alert box: a title sentence, then up to `max` further lines as a list.
 * An empty title and no lines leave the box empty (and hidden by its CSS).
 */
export function fillAlert(alert, title, lines = [], { max = Infinity } = {}) {
  alert.replaceChildren();
  if (!title && !lines.length) return;
  alert.append(el("p", "form-alert__title", title || lines[0]));
  const rest = title ? lines : lines.slice(1);
  if (!rest.length) return;
  const list = el("ul", "form-alert__list");
  for (const line of rest.slice(0, max)) list.append(el("li", "", line));
  if (rest.length > max) list.append(el("li", "", `…and ${rest.length - max} more.`));
  alert.append(list);
}
