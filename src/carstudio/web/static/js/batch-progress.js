// <batch-progress>: one batch while it runs and after it has finished. It polls
// GET /api/batch/{id} every `poll-interval` ms until the batch is ready (sending the last
// answer's ETag: while nothing changed the server answers 304 and the last answer stands),
// and shows the title,
// a progress bar, counts and time left, why it stopped and which model made it, and hands the rest of each answer to its parts:
// <batch-actions> (ZIP, retry, cancel, new batch), <failed-rows> and <batch-rows>. Its markup
// is the page's <template id="batch-progress-template">; titles are set as text.
//
//   attributes: job-id, poll-interval (2000 by default)
//   events:     "batch-status" detail: {status}   after every answer
//               "batch-new"                        (from <batch-actions>) start another batch
//   methods:    refresh(), focusTitle()

import { ApiError, getIfChanged } from "./api.js";
import { announcement, badge, modelNote, subtitle, timing } from "./batch-words.js";
import { cloneTemplate, emit, partsOf } from "./dom.js";
import { plural } from "./format.js";
import { modelLabel } from "./image-models.js";
import "./batch-actions.js";
import "./batch-rows.js";
import "./failed-rows.js";

const DEFAULT_POLL_MS = 2000;
const MIN_POLL_MS = 100;
const MAX_BACKOFF_MS = 30000;
const JOB_ID = /^[0-9a-f]{32}$/i;

export class BatchProgress extends HTMLElement {
  constructor() {
    super();
    this._parts = null;
    this._status = null;
    this._etag = "";
    this._timer = null;
    this._controller = null;
    this._generation = 0;
    this._failures = 0;
    this._milestones = new Set();
  }

  static get observedAttributes() {
    return ["job-id"];
  }

  connectedCallback() {
    if (!this._parts) this._build();
    if (this.jobId && !this._status && !this.polling) this.refresh();
  }

  disconnectedCallback() {
    this._stop();
  }

  attributeChangedCallback(name, before, after) {
    if (before === after || !this._parts) return;
    this._reset();
    if (after && this.isConnected) this.refresh();
  }

  /** The batch shown, or "" when none. */
  get jobId() {
    return this.getAttribute("job-id") || "";
  }

  set jobId(value) {
    if (value) this.setAttribute("job-id", String(value));
    else this.removeAttribute("job-id");
  }

  /** Milliseconds between status requests while the batch runs. */
  get pollInterval() {
    const value = Number(this.getAttribute("poll-interval"));
    return Number.isFinite(value) && value > 0 ? Math.max(MIN_POLL_MS, value) : DEFAULT_POLL_MS;
  }

  /** The last status answer, or null. */
  get status() {
    return this._status;
  }

  /** Whether the element is still asking the server for news. */
  get polling() {
    return Boolean(this._timer || this._controller);
  }

  /** Move focus to the heading, e.g. right after the batch was started. */
  focusTitle() {
    this._parts.title.focus();
  }

  /** Ask for the status now; keeps polling every `pollInterval` until the batch is ready. */
  async refresh() {
    const id = this.jobId;
    this._stop();
    if (!id) return null;
    if (!JOB_ID.test(id)) {
      this._showGone("This batch link is not valid; check that it was copied completely.");
      return null;
    }
    const generation = this._generation;
    const controller = new AbortController();
    this._controller = controller;
    const { connection } = this._parts;
    try {
      const answer = await getIfChanged(
        `/api/batch/${encodeURIComponent(id)}`,
        this._status ? this._etag : "",
        { signal: controller.signal },
      );
      if (generation !== this._generation) return null;
      this._failures = 0;
      connection.hidden = true;
      const status = answer.changed ? answer.body : this._status;
      if (answer.changed) {
        this._etag = answer.etag;
        this._render(status);
      }
      if (status.state !== "ready") this._schedule(this.pollInterval);
      return status;
    } catch (error) {
      if (generation !== this._generation || (error && error.name === "AbortError")) return null;
      if (error instanceof ApiError && (error.status === 404 || error.status === 410)) {
        this._showGone(error.message);
        return null;
      }
      // Keep trying, more slowly: a restarting server or a dropped connection is temporary.
      this._failures += 1;
      connection.hidden = false;
      connection.textContent =
        error instanceof ApiError && error.status
          ? `${error.message} Trying again…`
          : "Lost contact with Car Studio; trying again…";
      this._schedule(Math.min(this.pollInterval * 2 ** this._failures, MAX_BACKOFF_MS));
      return null;
    } finally {
      if (this._controller === controller) this._controller = null;
    }
  }

  // -- internals -----------------------------------------------------------------------------

  /** After a switch, cancel or retry: say so, show the answer, and read the status again. */
  _acted({ jobId, action, status }) {
    if (jobId !== this.jobId) return;
    if (status) {
      if (action !== "cancel") this._milestones.clear();
      const kept = "finished images are kept.";
      const said = {
        cancel: `Cancelling the rows that have not started; ${kept}`,
        "retry-failed": "Retrying the failed rows.",
        "switch-model": `Running the remaining rows with ${modelLabel(status.model)}; ${kept}`,
      };
      this._announce(said[action] || "");
      this._render(status);
      // The pressed button is hidden once the batch runs again; keep the keyboard in the batch.
      const active = document.activeElement;
      if (!active || active === document.body || active.offsetParent === null) this.focusTitle();
    }
    this.refresh();
  }

  _schedule(delay) {
    clearTimeout(this._timer);
    this._timer = setTimeout(() => {
      this._timer = null;
      this.refresh();
    }, delay);
  }

  _stop() {
    clearTimeout(this._timer);
    this._timer = null;
    if (this._controller) this._controller.abort();
    this._controller = null;
  }

  _build() {
    const content = cloneTemplate("batch-progress-template");
    this._parts = partsOf(content);
    this.replaceChildren(content);
    this.setAttribute("role", "region");
    this.setAttribute("aria-labelledby", this._parts.title.id);
    const { actions, goneNew } = this._parts;
    actions.addEventListener("batch-acted", (event) => this._acted(event.detail));
    goneNew.addEventListener("click", () => emit(this, "batch-new"));
    this.dataset.state = "loading";
  }

  /** Back to "loading", for another batch. */
  _reset() {
    this._stop();
    this._generation += 1;
    this._status = null;
    this._etag = "";
    this._failures = 0;
    this._milestones.clear();
    const p = this._parts;
    p.rows.clear();
    p.failedPanel.clear();
    p.actions.clear();
    for (const node of [p.live, p.subtitle, p.modelNote, p.storageNote]) node.textContent = "";
    p.connection.hidden = p.gone.hidden = p.badge.hidden = p.modelNote.hidden = true;
    p.storageNote.hidden = true;
    p.main.hidden = false;
    this.dataset.state = "loading";
    p.title.textContent = "Loading the batch…";
    this._setBar(0, 0, 0);
  }

  _announce(text) {
    this._parts.live.textContent = text;
  }

  _showGone(message) {
    this._stop();
    this._status = null;
    this.dataset.state = "gone";
    const p = this._parts;
    p.title.textContent = "This batch is not available";
    p.subtitle.textContent = "";
    p.badge.hidden = p.main.hidden = true;
    p.gone.hidden = false;
    p.goneText.textContent = message;
    this._announce(message);
  }

  _setBar(percent, done, failed, total = 0) {
    const share = (count) => (total ? `${(count / total) * 100}%` : "0%");
    const p = this._parts;
    p.barDone.style.width = share(done);
    p.barFailed.style.width = share(failed);
    p.progressbar.setAttribute("aria-valuenow", String(percent));
    p.progressbar.setAttribute(
      "aria-valuetext",
      total ? `${percent}%: ${done} of ${total} done, ${failed} failed` : `${percent}%`,
    );
    p.percent.textContent = `${percent}%`;
  }

  _render(status) {
    const previous = this._status;
    this._status = status;
    const p = this._parts;
    const total = Number(status.total) || 0;
    const done = Number(status.done) || 0;
    const failed = Number(status.failed) || 0;
    const percent = Math.max(0, Math.min(100, Math.round(Number(status.percent) || 0)));
    this.dataset.state = status.state;
    p.main.hidden = false;
    p.gone.hidden = true;

    p.title.textContent = `Batch of ${plural(total, "car")}`;
    p.subtitle.textContent = subtitle(status);
    const [badgeText, tone] = badge(status);
    p.badge.hidden = false;
    p.badge.textContent = badgeText;
    p.badge.dataset.tone = tone;

    this._setBar(percent, done, failed, total);
    p.done.textContent = String(done);
    p.failed.textContent = String(failed);
    p.failedStat.classList.toggle("has-failures", failed > 0);
    p.total.textContent = String(total);
    const [etaLabel, eta] = timing(status);
    p.etaLabel.textContent = etaLabel;
    p.eta.textContent = eta;

    p.batchError.hidden = !status.stopReason;
    p.batchError.textContent = status.stopReason ? `The batch stopped: ${status.stopReason}` : "";
    // The server cannot store images (or write the ZIP) now: the batch waits, and says so.
    const waiting = status.storageProblem || status.archiveProblem || "";
    p.storageNote.hidden = !waiting;
    if (p.storageNote.textContent !== waiting) p.storageNote.textContent = waiting;
    const moved = modelNote(status);
    p.modelNote.hidden = !moved;
    if (p.modelNote.textContent !== moved) p.modelNote.textContent = moved;

    p.rows.show(Array.isArray(status.rows) ? status.rows : []);
    p.failedPanel.show(status);
    p.actions.show(status);
    const news = announcement(previous, status, this._milestones);
    if (news) this._announce(news);
    emit(this, "batch-status", { status });
  }
}

if (!customElements.get("batch-progress")) customElements.define("batch-progress", BatchProgress);
