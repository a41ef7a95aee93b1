// <batch-actions>: what can be done with one batch right now: run the rows a retired model
// stopped with the model the server offers, download its ZIP, retry the failed rows, cancel
// the rows that have not started, or start a new batch. Switch, cancel and retry are sent
// from here; a refusal is shown beside the buttons. Its markup is the page's
// <template id="batch-actions-template">.
//
//   events:  "batch-acted" detail: {jobId, action, status}  after a switch-model, cancel or
//                                   retry-failed was sent; status is the server's answer, null when it refused
//            "batch-new"            the person asked to start another batch
//   methods: show(status)  status: the answer of GET /api/batch/{id}; null while loading
//            clear()

import { ApiError, request } from "./api.js";
import { modelToSwitchTo } from "./batch-words.js";
import { cloneTemplate, emit, partsOf, setBusy } from "./dom.js";
import { modelLabel } from "./image-models.js";

export class BatchActions extends HTMLElement {
  constructor() {
    super();
    this._parts = null;
    this._status = null;
    this._busy = null;
  }

  connectedCallback() {
    if (this._parts) return;
    const content = cloneTemplate("batch-actions-template");
    this._parts = partsOf(content);
    this.replaceChildren(content);
    this._parts.cancel.addEventListener("click", () => this._act("cancel"));
    this._parts.retry.addEventListener("click", () => this._act("retry-failed"));
    this._parts.switch.addEventListener("click", () => {
      const model = modelToSwitchTo(this._status);
      if (model) this._act("switch-model", { model });
    });
    this._parts.new.addEventListener("click", () => emit(this, "batch-new"));
    this.show(null);
  }

  clear() {
    this._parts.note.textContent = "";
    this.show(null);
  }

  show(status) {
    this._status = status;
    const ready = Boolean(status) && status.state === "ready";
    const running = Boolean(status) && status.state === "running";
    const { zip, cancel, cancelHint, retry, switch: switchButton } = this._parts;
    const switchTo = modelToSwitchTo(status);

    zip.hidden = !(ready && status.zipUrl);
    // Moving to the offered model is the next step then; the partial ZIP steps back beside it.
    zip.classList.toggle("button--primary", !switchTo);
    zip.classList.toggle("button--secondary", Boolean(switchTo));
    if (ready && status.zipUrl) {
      zip.href = status.zipUrl;
      zip.setAttribute("download", "");
    }
    cancel.hidden = cancelHint.hidden = !running;
    setBusy(cancel, this._busy === "cancel");
    switchButton.hidden = !switchTo;
    const switchLabel = switchTo ? `Run the remaining rows with ${modelLabel(switchTo)}` : null;
    setBusy(switchButton, this._busy === "switch-model", switchLabel);
    // Rows that were never valid, or were cancelled, are not retried; the server counts the rest.
    // Retrying a batch its model's retirement stopped would only ask that model again.
    retry.hidden = !(ready && Number(status.retryable) > 0) || Boolean(switchTo);
    setBusy(retry, this._busy === "retry-failed");
    this._parts.new.hidden = !ready;
  }

  /** POST the action for the batch shown; `json` is its body, if it takes one. */
  async _act(action, json) {
    const jobId = this._status && this._status.jobId;
    if (this._busy || !jobId) return;
    this._busy = action;
    this._parts.note.textContent = "";
    this.show(this._status);
    let status = null;
    try {
      status = await request(`/api/batch/${encodeURIComponent(jobId)}/${action}`, {
        method: "POST",
        json,
      });
    } catch (error) {
      // Said only while the same batch is still shown.
      if (this._status && this._status.jobId === jobId) {
        this._parts.note.textContent =
          error instanceof ApiError ? error.message : "That did not work; try again.";
      }
    } finally {
      this._busy = null;
      this.show(this._status);
      emit(this, "batch-acted", { jobId, action, status });
    }
  }
}

if (!customElements.get("batch-actions")) customElements.define("batch-actions", BatchActions);
