// <failed-rows>: the rows of a batch that made no image: how many failed or were cancelled,
// a link to failed_rows.json, and every row with its reason. Hidden while there are none. Its
// markup is the page's <template id="failed-rows-template">, each row
// <template id="failed-row-template">; reasons and car titles are set as text.
//
//   methods: show(status)  status: the answer of GET /api/batch/{id}
//            clear()

import { cloneTemplate, partsOf } from "./dom.js";
import { plural } from "./format.js";

export class FailedRows extends HTMLElement {
  constructor() {
    super();
    this._parts = null;
  }

  connectedCallback() {
    if (this._parts) return;
    const content = cloneTemplate("failed-rows-template");
    this._parts = partsOf(content);
    this.replaceChildren(content);
  }

  clear() {
    this.hidden = true;
    this._parts.failedList.replaceChildren();
  }

  show(status) {
    const { title, failedLink, failedCsvLink, failedList } = this._parts;
    const rows = (Array.isArray(status.rows) ? status.rows : []).filter(
      (row) => row.state === "failed" || row.state === "canceled",
    );
    const count = Number(status.failed) || rows.length;
    if (!count) {
      this.clear();
      return;
    }
    this.hidden = false;
    const canceled = rows.filter((row) => row.state === "canceled").length;
    const failed = count - canceled;
    if (!canceled) title.textContent = `${plural(count, "row")} failed`;
    else if (!failed) title.textContent = `${plural(canceled, "row")} cancelled`;
    else title.textContent = `${plural(failed, "row")} failed, ${canceled} cancelled`;
    failedLink.hidden = !status.failedRowsUrl;
    if (status.failedRowsUrl) failedLink.href = status.failedRowsUrl;
    // The same rows in the file's own columns, with a reason: fix them and upload again.
    failedCsvLink.hidden = !status.failedRowsCsvUrl;
    if (status.failedRowsCsvUrl) failedCsvLink.href = status.failedRowsCsvUrl;
    failedList.replaceChildren(...rows.map((row) => this._item(row)));
  }

  _item(row) {
    const item = cloneTemplate("failed-row-template").firstElementChild;
    const parts = partsOf(item);
    item.dataset.row = String(row.row);
    parts.number.textContent = `Row ${row.row}`;
    parts.car.textContent = String(row.title ?? "");
    parts.reason.textContent = String(
      row.error || (row.state === "canceled" ? "Cancelled." : "No reason was recorded."),
    );
    return item;
  }
}

if (!customElements.get("failed-rows")) customElements.define("failed-rows", FailedRows);
