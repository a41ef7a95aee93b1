// <month-spend>: what images cost this month, in the page header. The server renders the
// figure; after the page makes an image (a Single image, or a batch's progress moving on) it
// asks the server again (GET /api/usage), so the page never adds up prices of its own.
//
//   markup:   <month-spend><span data-part="spent">$1.23</span> of $50.00</month-spend>
//   listens:  "generation-done", "generation-failed" (from <car-form>), "batch-status" (from
//             <batch-progress>), on the document
//   methods:  refresh()

import { getJSON } from "./api.js";
import { formatUsd } from "./format.js";

const USAGE_URL = "/api/usage";

export class MonthSpend extends HTMLElement {
  constructor() {
    super();
    this._spent = null;
    this._asked = 0;
    // The batch progress last seen, by job id: a poll that brings nothing new asks nothing.
    this._batches = new Map();
    this._refresh = () => this.refresh();
    this._follow = (event) => this._followBatch(event.detail.status);
  }

  connectedCallback() {
    this._spent = this.querySelector('[data-part="spent"]');
    // A refused image may still have been paid for (its prediction was created), so both ask.
    document.addEventListener("generation-done", this._refresh);
    document.addEventListener("generation-failed", this._refresh);
    document.addEventListener("batch-status", this._follow);
  }

  disconnectedCallback() {
    document.removeEventListener("generation-done", this._refresh);
    document.removeEventListener("generation-failed", this._refresh);
    document.removeEventListener("batch-status", this._follow);
  }

  /** Ask the server for this month's spending and show it. */
  async refresh() {
    const asked = ++this._asked;
    try {
      const usage = await getJSON(USAGE_URL);
      // Answers can overtake one another; only the latest question's answer is shown.
      if (asked === this._asked && this._spent) {
        this._spent.textContent = formatUsd(usage.monthToDate);
      }
    } catch {
      // The figure already shown stays; the next image asks again.
    }
  }

  _followBatch(status) {
    if (!status || !status.jobId) return;
    const seen = `${status.done}/${status.failed}/${status.state}`;
    const before = this._batches.get(status.jobId);
    this._batches.set(status.jobId, seen);
    // The first status of a batch only sets the mark: the figure on the page is that recent.
    if (before !== undefined && before !== seen) this.refresh();
  }
}

if (!customElements.get("month-spend")) customElements.define("month-spend", MonthSpend);
