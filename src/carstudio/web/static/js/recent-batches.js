// <recent-batches>: the batches a person can open again, newest first, from GET /api/batches
// (their own; with sign-in off, every batch on this server). Each entry is a link to
// #batch/<id>, which <batch-tab> follows into <batch-progress>, so a click, a new tab and the
// Back button all work as links do. Ten at a time; "Show more" follows the answer's `next`.
// With nothing to list the element stays hidden: a first visit shows no empty box. Its markup
// is the page's <template id="recent-batches-template">, one "recent-batch-template" per batch.
//
//   methods: refresh()  list again from the newest (back at the drop-zone, after a start)

import { getJSON } from "./api.js";
import { badge, madeBy } from "./batch-words.js";
import { cloneTemplate, partsOf, setBusy } from "./dom.js";
import { localTime } from "./format.js";

const FIRST_PAGE = "/api/batches?limit=10";

/** One batch summary (an entry of GET /api/batches) as a list item linking to its progress. */
function entryFor(batch) {
  const item = cloneTemplate("recent-batch-template");
  const p = partsOf(item);
  p.link.href = `#batch/${encodeURIComponent(batch.jobId)}`;
  p.name.textContent = batch.source || "Untitled CSV";
  p.started.dateTime = new Date(Number(batch.createdAt) * 1000).toISOString();
  p.started.textContent = localTime(batch.createdAt);
  p.model.textContent = madeBy(batch);
  p.done.textContent = String(batch.done);
  p.total.textContent = String(batch.total);
  // The progress view's own words, so a batch is called the same in both places.
  const [words, tone] = badge(batch);
  p.badge.textContent = words;
  p.badge.dataset.tone = tone;
  return item;
}

export class RecentBatches extends HTMLElement {
  constructor() {
    super();
    this._parts = null;
    this._next = null;
    this._controller = null;
  }

  connectedCallback() {
    if (this._parts) return;
    const content = cloneTemplate("recent-batches-template");
    this._parts = partsOf(content);
    this.replaceChildren(content);
    this._parts.more.addEventListener("click", () => this._load(this._next, { append: true }));
    this.refresh();
  }

  /** Ask for the newest batches again, replacing what is listed. */
  refresh() {
    return this._load(FIRST_PAGE, { append: false });
  }

  async _load(url, { append }) {
    if (!url) return;
    // The newest request wins: a refresh during "Show more" must not be appended to.
    if (this._controller) this._controller.abort();
    const controller = new AbortController();
    this._controller = controller;
    const { list, more, note } = this._parts;
    setBusy(more, append);
    try {
      const answer = await getJSON(url, { signal: controller.signal });
      if (this._controller !== controller) return;
      const entries = (answer.batches || []).map(entryFor);
      const firstNew = entries.length ? entries[0].querySelector("a") : null;
      if (append) list.append(...entries);
      else list.replaceChildren(...entries);
      this._next = answer.next || null;
      note.textContent = "";
      this._show();
      // The pressed button may now be gone; the first new batch is where reading goes on.
      if (append && firstNew) firstNew.focus();
      else if (append && more.hidden) list.querySelector("li:last-child a")?.focus();
    } catch (error) {
      if (this._controller !== controller || (error && error.name === "AbortError")) return;
      // With nothing listed the section stays hidden: the drop-zone matters more than a note.
      note.textContent = error.message || "The recent batches could not be loaded.";
      this._show();
    } finally {
      if (this._controller === controller) {
        this._controller = null;
        setBusy(more, false);
      }
    }
  }

  _show() {
    const { list, more } = this._parts;
    this.hidden = list.children.length === 0;
    more.hidden = !this._next;
  }
}

if (!customElements.get("recent-batches")) customElements.define("recent-batches", RecentBatches);
