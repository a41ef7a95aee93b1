// <batch-rows>: one tile per row of a batch, in row order: its thumbnail once the image
// exists (linking to the full image), the car, what identifies it on the lot (stock number,
// VIN: the registry's identity fields), and the row's state in words. Tiles are kept
// between updates, so a thumbnail is fetched once and never flickers. A tile whose image failed
// or warned a check (shape, background, colour, blank, duplicate) carries a "Check" badge that
// tells why on hover or focus, and "Needs a look" shows only those tiles. Its markup is the
// page's <template id="batch-rows-template">, each tile <template id="batch-row-template">.
//
//   methods: show(rows)  rows: the `rows` of GET /api/batch/{id}
//            clear()

import { identityWords } from "./car-fields.js";
import { cloneTemplate, partsOf } from "./dom.js";
import { formatSeconds } from "./format.js";

const ROW_WORDS = {
  queued: "Waiting",
  creating: "Starting",
  waiting: "Generating",
  downloading: "Saving",
  done: "Done",
  failed: "Failed",
  canceled: "Cancelled",
};
const ACTIVE_ROWS = new Set(["creating", "waiting", "downloading"]);

export class BatchRows extends HTMLElement {
  constructor() {
    super();
    this._grid = null;
    this._tiles = new Map();
  }

  connectedCallback() {
    if (this._grid) return;
    const content = cloneTemplate("batch-rows-template");
    const parts = partsOf(content);
    this._grid = parts.grid;
    this._review = parts;
    parts.reviewFilter.addEventListener("change", () => this._filter());
    this.replaceChildren(content);
  }

  _filter() {
    this._grid.classList.toggle("is-filtered", this._review.reviewFilter.checked);
  }

  _countReviews(rows) {
    const count = rows.filter((row) => row.needsReview).length;
    this._review.reviewCount.textContent = String(count);
    this._review.review.hidden = count === 0;
    if (count === 0) this._review.reviewFilter.checked = false;
    this._filter();
  }

  clear() {
    this._tiles.clear();
    this._grid.replaceChildren();
  }

  show(rows) {
    const seen = new Set();
    let before = null;
    for (let index = rows.length - 1; index >= 0; index -= 1) {
      const row = rows[index];
      seen.add(row.row);
      let tile = this._tiles.get(row.row);
      if (!tile) {
        tile = this._tile(row);
        this._tiles.set(row.row, tile);
      }
      if (tile.node.nextSibling !== before || tile.node.parentNode !== this._grid) {
        this._grid.insertBefore(tile.node, before);
      }
      before = tile.node;
      this._update(tile, row);
    }
    for (const [number, tile] of this._tiles) {
      if (!seen.has(number)) {
        tile.node.remove();
        this._tiles.delete(number);
      }
    }
    this._countReviews(rows);
  }

  _tile(row) {
    const content = cloneTemplate("batch-row-template");
    const node = content.firstElementChild;
    const parts = partsOf(node);
    node.dataset.row = String(row.row);
    parts.number.textContent = `Row ${row.row}`;
    parts.checkTip.id = `check-tip-${row.row}`;
    parts.check.setAttribute("aria-describedby", parts.checkTip.id);
    return { node, ...parts, link: null, thumbUrl: null };
  }

  _check(tile, row) {
    const flagged = row.state === "done" && Boolean(row.needsReview && row.checks);
    tile.node.classList.toggle("needs-review", flagged);
    tile.checkBox.hidden = !flagged;
    if (!flagged) return;
    tile.checkBox.dataset.verdict = row.checks.verdict;
    if (tile.checkTip.textContent !== row.checks.sentence) {
      tile.checkTip.textContent = row.checks.sentence;
    }
  }

  _update(tile, row) {
    tile.node.dataset.state = row.state;
    const title = String(row.title ?? "");
    if (tile.rowTitle.textContent !== title) {
      tile.rowTitle.textContent = title;
      tile.rowTitle.title = title;
    }
    const identity = identityWords(row.identity);
    if (tile.rowIdentity.textContent !== identity) {
      tile.rowIdentity.textContent = identity;
      tile.rowIdentity.hidden = !identity;
    }
    const words = ROW_WORDS[row.state] || String(row.state);
    const took = row.state === "done" && Number(row.seconds) > 0 ? formatSeconds(row.seconds) : "";
    const again = row.state === "done" && row.rerolls > 0 ? "made again" : "";
    tile.rowState.textContent = [words, took, again].filter(Boolean).join(" · ");
    this._check(tile, row);
    tile.node.classList.toggle("is-active", ACTIVE_ROWS.has(row.state));
    if (row.error && row.state !== "done") tile.rowState.title = String(row.error);
    else tile.rowState.removeAttribute("title");

    const thumb = row.state === "done" ? row.thumbUrl : null;
    if (thumb && tile.thumbUrl !== thumb) {
      const link = cloneTemplate("batch-thumb-template").firstElementChild;
      const img = link.querySelector("img");
      link.href = row.imageUrl || thumb;
      img.alt = identity ? `Row ${row.row}: ${title} (${identity})` : `Row ${row.row}: ${title}`;
      img.addEventListener("load", () => tile.node.classList.add("has-image"));
      img.addEventListener("error", () => tile.node.classList.add("is-broken"));
      img.src = thumb;
      if (tile.link) tile.link.replaceWith(link);
      else tile.thumb.append(link);
      tile.link = link;
      tile.thumbUrl = thumb;
    } else if (!thumb && tile.link) {
      tile.link.remove();
      tile.node.classList.remove("has-image", "is-broken");
      tile.link = tile.thumbUrl = null;
    }
  }
}

if (!customElements.get("batch-rows")) customElements.define("batch-rows", BatchRows);
