// <batch-rows>: one tile per row of a batch, in row order: its thumbnail once the image
// exists (linking to the full image), the car, what identifies it on the lot (stock number,
// VIN: the registry's identity fields), and the row's state in words. Tiles are kept
// between updates, so a thumbnail is fetched once and never flickers. Its markup is the page's
// <template id="batch-rows-template">, each tile <template id="batch-row-template">.
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
    this._grid = partsOf(content).grid;
    this.replaceChildren(content);
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
  }

  _tile(row) {
    const content = cloneTemplate("batch-row-template");
    const node = content.firstElementChild;
    const parts = partsOf(node);
    node.dataset.row = String(row.row);
    parts.number.textContent = `Row ${row.row}`;
    return { node, ...parts, link: null, thumbUrl: null };
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
    tile.rowState.textContent = took ? `${words} · ${took}` : words;
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
