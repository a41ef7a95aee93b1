// <batch-progress>: one batch while it runs and after it has finished. It polls
// GET /api/batch/{id} every `poll-interval` ms (2000 by default) until the batch is ready, and
// shows the progress bar, counts, time left, a thumbnail and status per row, the failed rows
// with their reasons, and the ZIP once it exists.
//
//   attributes: job-id, poll-interval
//   events:     "batch-status" detail: {status}   after every answer
//               "batch-new"                        the person asked to start another batch
//   methods:    refresh(), cancel(), retryFailed(), focusTitle()
//
// Every title and reason is shown with textContent, never parsed as HTML.

import { ApiError, getJSON, request } from "./api.js";
import { el, icon } from "./dom.js";

const DEFAULT_POLL_MS = 2000;
const MIN_POLL_MS = 100;
const MAX_BACKOFF_MS = 30000;
const JOB_ID = /^[0-9a-f]{32}$/i;

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
const MILESTONES = [25, 50, 75];

const ICON_DOWNLOAD = ["M12 4v11", "M7.5 10.5L12 15l4.5-4.5", "M5 19.5h14"];
const ICON_RETRY = ["M4.5 12a7.5 7.5 0 0 1 13-5.1L19.5 9", "M19.5 4.5V9H15", "M19.5 12a7.5 7.5 0 0 1-13 5.1L4.5 15", "M4.5 19.5V15H9"];
const ICON_STOP = ["M12 3.5a8.5 8.5 0 1 0 0 17 8.5 8.5 0 0 0 0-17z", "M9.5 9.5h5v5h-5z"];
const ICON_PLUS = ["M12 5v14", "M5 12h14"];
const ICON_ALERT = ["M12 3.5l9 16H3z", "M12 10v4.5", "M12 17.2v.01"];
const ICON_IMAGE = [
  "M4 6.5A2.5 2.5 0 0 1 6.5 4h11A2.5 2.5 0 0 1 20 6.5v11a2.5 2.5 0 0 1-2.5 2.5h-11A2.5 2.5 0 0 1 4 17.5z",
  "M4 16l4.5-4.5a1.5 1.5 0 0 1 2.1 0L16 17",
  "M15.5 8.5h.01",
];

function button(label, className, paths) {
  const node = el("button", `button ${className}`);
  node.type = "button";
  const spinner = el("span", "spinner");
  spinner.setAttribute("aria-hidden", "true");
  node.append(spinner);
  if (paths) node.append(icon(paths));
  const text = el("span", "button__label", label);
  node.append(text);
  return node;
}

function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

/** Time left in words: "About 40 seconds", "About 3 minutes". */
export function timeLeftInWords(seconds) {
  if (seconds == null || !Number.isFinite(Number(seconds))) return "Estimating…";
  const s = Math.max(0, Number(seconds));
  if (s <= 5) return "A few seconds";
  if (s < 55) return `About ${Math.ceil(s / 5) * 5} seconds`;
  if (s < 90) return "About a minute";
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `About ${minutes} minutes`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes - hours * 60;
  return `About ${plural(hours, "hour")}${rest ? ` ${plural(rest, "minute")}` : ""}`;
}

/** A duration in words: "12 seconds", "3 min 5 s". */
function durationInWords(seconds) {
  const exact = Math.max(0, Number(seconds) || 0);
  if (exact < 1) return "Under a second";
  const s = Math.round(exact);
  if (s < 60) return plural(s, "second");
  const minutes = Math.floor(s / 60);
  const rest = s - minutes * 60;
  return rest ? `${minutes} min ${rest} s` : plural(minutes, "minute");
}

function formatSeconds(seconds) {
  const s = Number(seconds);
  if (!Number.isFinite(s) || s <= 0) return "";
  return s < 10 ? `${s.toFixed(1)} s` : `${Math.round(s)} s`;
}

export class BatchProgress extends HTMLElement {
  constructor() {
    super();
    this._built = false;
    this._status = null;
    this._timer = null;
    this._controller = null;
    this._generation = 0;
    this._failures = 0;
    this._tiles = new Map();
    this._milestones = new Set();
    this._busyAction = null;
  }

  static get observedAttributes() {
    return ["job-id"];
  }

  connectedCallback() {
    if (!this._built) this._build();
    if (this.jobId && !this._status && !this._timer && !this._controller) this.refresh();
  }

  disconnectedCallback() {
    this._stop();
  }

  attributeChangedCallback(name, before, after) {
    if (name !== "job-id" || before === after || !this._built) return;
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

  /** Milliseconds between status requests while the batch runs (default 2000). */
  get pollInterval() {
    const value = Number(this.getAttribute("poll-interval"));
    return Number.isFinite(value) && value > 0 ? Math.max(MIN_POLL_MS, value) : DEFAULT_POLL_MS;
  }

  set pollInterval(value) {
    this.setAttribute("poll-interval", String(value));
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
    this._title.focus();
  }

  /** Ask for the status now; keeps polling every `pollInterval` until the batch is ready. */
  async refresh() {
    const id = this.jobId;
    clearTimeout(this._timer);
    this._timer = null;
    if (this._controller) this._controller.abort();
    if (!id) return null;
    const generation = this._generation;
    if (!JOB_ID.test(id)) {
      this._showGone("This batch link is not valid; check that it was copied completely.");
      return null;
    }
    const controller = new AbortController();
    this._controller = controller;
    try {
      const status = await getJSON(`/api/batch/${encodeURIComponent(id)}`, {
        signal: controller.signal,
      });
      if (generation !== this._generation) return null;
      this._failures = 0;
      this._connection.hidden = true;
      this._render(status);
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
      this._connection.hidden = false;
      this._connection.textContent =
        error instanceof ApiError && error.status
          ? `${error.message} Trying again…`
          : "Lost contact with Car Studio; trying again…";
      this._schedule(Math.min(this.pollInterval * 2 ** this._failures, MAX_BACKOFF_MS));
      return null;
    } finally {
      if (this._controller === controller) this._controller = null;
    }
  }

  /** Stop the rows that have not started; finished images are kept. */
  cancel() {
    return this._act("cancel", `/api/batch/${encodeURIComponent(this.jobId)}/cancel`, () =>
      this._announce("Cancelling the rows that have not started; finished images are kept."),
    );
  }

  /** Run the failed rows again under the same row numbers and file names. */
  retryFailed() {
    return this._act("retry", `/api/batch/${encodeURIComponent(this.jobId)}/retry-failed`, () => {
      this._milestones.clear();
      this._announce("Retrying the failed rows.");
    });
  }

  // -- internals -----------------------------------------------------------------------------

  async _act(name, url, done) {
    if (this._busyAction || !this.jobId) return null;
    const generation = this._generation;
    this._busyAction = name;
    this._note.textContent = "";
    this._renderActions(this._status);
    try {
      const status = await request(url, { method: "POST" });
      if (generation !== this._generation) return null;
      done();
      this._render(status);
      return status;
    } catch (error) {
      if (generation !== this._generation) return null;
      this._note.textContent =
        error instanceof ApiError ? error.message : "That did not work; try again.";
      return null;
    } finally {
      this._busyAction = null;
      if (generation === this._generation) {
        this._renderActions(this._status);
        // Whatever happened, the status is worth reading again (and polling resumes).
        this.refresh();
      }
    }
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

  _reset() {
    this._stop();
    this._generation += 1;
    this._status = null;
    this._failures = 0;
    this._milestones.clear();
    this._tiles.clear();
    this._grid.replaceChildren();
    this._failedList.replaceChildren();
    this._note.textContent = "";
    this._live.textContent = "";
    this._connection.hidden = true;
    this._gone.hidden = true;
    this._main.hidden = false;
    this.dataset.state = "loading";
    this._title.textContent = "Loading the batch…";
    this._subtitle.textContent = "";
    this._badge.hidden = true;
    this._setBar(0, 0, 0);
    this._renderActions(null);
  }

  _build() {
    this._built = true;
    this.setAttribute("role", "region");
    this.setAttribute("aria-labelledby", "batch-progress-title");

    const head = el("div", "bp-head");
    const heading = el("div", "bp-head__text");
    this._title = el("h2", "surface__title bp-title", "Loading the batch…");
    this._title.id = "batch-progress-title";
    this._title.tabIndex = -1;
    this._title.dataset.part = "title";
    this._subtitle = el("p", "bp-subtitle");
    this._subtitle.dataset.part = "subtitle";
    heading.append(this._title, this._subtitle);
    this._badge = el("span", "bp-badge");
    this._badge.dataset.part = "badge";
    this._badge.hidden = true;
    head.append(heading, this._badge);

    // Progress: a labelled bar, the numbers, and the time left.
    const main = el("div", "bp-main");
    const barRow = el("div", "bp-bar-row");
    const bar = el("div", "bp-bar");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.setAttribute("aria-valuenow", "0");
    bar.setAttribute("aria-label", "Batch progress");
    bar.dataset.part = "progressbar";
    this._barDone = el("span", "bp-bar__done");
    this._barFailed = el("span", "bp-bar__failed");
    bar.append(this._barDone, this._barFailed);
    this._bar = bar;
    this._percent = el("span", "bp-percent", "0%");
    this._percent.dataset.part = "percent";
    this._percent.setAttribute("aria-hidden", "true");
    barRow.append(bar, this._percent);

    const stats = el("dl", "bp-stats");
    const stat = (label, part) => {
      const item = el("div", `bp-stat bp-stat--${part}`);
      const value = el("dd", "bp-stat__value", "–");
      value.dataset.part = part;
      const name = el("dt", "bp-stat__label", label);
      item.append(name, value);
      stats.append(item);
      return { item, value, name };
    };
    this._done = stat("Done", "done");
    this._failed = stat("Failed", "failed");
    this._total = stat("Total", "total");
    this._eta = stat("Time left", "eta");

    this._error = el("div", "bp-error");
    this._error.dataset.part = "batch-error";
    this._error.setAttribute("role", "alert");
    this._error.hidden = true;

    this._connection = el("p", "bp-connection");
    this._connection.dataset.part = "connection";
    this._connection.hidden = true;

    // Actions: whichever make sense in the current state.
    const actions = el("div", "bp-actions");
    this._zip = el("a", "button button--primary bp-zip");
    this._zip.dataset.part = "zip";
    this._zip.append(icon(ICON_DOWNLOAD), el("span", "", "Download ZIP"));
    this._zip.hidden = true;
    this._retry = button("Retry failed rows", "button--secondary bp-retry", ICON_RETRY);
    this._retry.dataset.part = "retry";
    this._retry.hidden = true;
    this._cancel = button("Cancel batch", "button--secondary bp-cancel", ICON_STOP);
    this._cancel.dataset.part = "cancel";
    this._cancel.hidden = true;
    this._cancelHint = el("p", "bp-actions__hint", "Finished images are kept.");
    this._cancelHint.hidden = true;
    this._new = button("New batch", "button--secondary bp-new", ICON_PLUS);
    this._new.dataset.part = "new";
    this._new.hidden = true;
    actions.append(this._zip, this._retry, this._cancel, this._cancelHint, this._new);
    this._actions = actions;

    this._note = el("p", "bp-note");
    this._note.dataset.part = "note";
    this._note.setAttribute("role", "status");

    // Failed rows: the count, the report file, and every reason.
    const failed = el("section", "bp-failed");
    failed.dataset.part = "failed-panel";
    failed.hidden = true;
    const failedHead = el("div", "bp-failed__head");
    this._failedTitle = el("h3", "bp-failed__title");
    this._failedTitle.id = "batch-failed-title";
    failed.setAttribute("aria-labelledby", this._failedTitle.id);
    this._failedLink = el("a", "bp-failed__link");
    this._failedLink.dataset.part = "failed-link";
    this._failedLink.append(icon(ICON_DOWNLOAD), el("span", "", "failed_rows.json"));
    this._failedLink.setAttribute("download", "failed_rows.json");
    failedHead.append(icon(ICON_ALERT, "ic-icon bp-failed__icon"), this._failedTitle, this._failedLink);
    this._failedList = el("ul", "bp-failed__list");
    this._failedList.dataset.part = "failed-list";
    failed.append(failedHead, this._failedList);
    this._failedPanel = failed;

    // One tile per row: thumbnail once it exists, and the row's status.
    const rowsTitle = el("h3", "visually-hidden", "Cars in this batch");
    rowsTitle.id = "batch-rows-title";
    this._grid = el("ul", "bp-grid");
    this._grid.dataset.part = "rows";
    this._grid.setAttribute("aria-labelledby", rowsTitle.id);

    main.append(
      barRow,
      stats,
      this._error,
      this._connection,
      actions,
      this._note,
      failed,
      rowsTitle,
      this._grid,
    );
    this._main = main;

    this._gone = el("div", "bp-gone");
    this._gone.dataset.part = "gone";
    this._gone.hidden = true;
    this._goneText = el("p", "bp-gone__text");
    const goneNew = button("Start a new batch", "button--primary", ICON_PLUS);
    goneNew.addEventListener("click", () => this._emit("batch-new"));
    this._gone.append(icon(ICON_ALERT, "ic-icon ic-icon--large"), this._goneText, goneNew);

    // Announced sparingly: start, each quarter, the end. The bar itself stays silent.
    this._live = el("p", "visually-hidden");
    this._live.setAttribute("aria-live", "polite");
    this._live.dataset.part = "live";

    this.replaceChildren(head, main, this._gone, this._live);

    this._cancel.addEventListener("click", () => this.cancel());
    this._retry.addEventListener("click", () => this.retryFailed());
    this._new.addEventListener("click", () => this._emit("batch-new"));
    this.dataset.state = "loading";
  }

  _emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { bubbles: true, detail }));
  }

  _announce(text) {
    this._live.textContent = text;
  }

  _showGone(message) {
    this._stop();
    this._status = null;
    this.dataset.state = "gone";
    this._title.textContent = "This batch is not available";
    this._subtitle.textContent = "";
    this._badge.hidden = true;
    this._main.hidden = true;
    this._gone.hidden = false;
    this._goneText.textContent = message;
    this._announce(message);
  }

  _setBar(percent, done, failed, total = 0) {
    const share = (count) => (total ? `${(count / total) * 100}%` : "0%");
    this._barDone.style.width = share(done);
    this._barFailed.style.width = share(failed);
    this._bar.setAttribute("aria-valuenow", String(percent));
    this._bar.setAttribute(
      "aria-valuetext",
      total ? `${percent}%: ${done} of ${total} done, ${failed} failed` : `${percent}%`,
    );
    this._percent.textContent = `${percent}%`;
  }

  _render(status) {
    const previous = this._status;
    this._status = status;
    const total = Number(status.total) || 0;
    const done = Number(status.done) || 0;
    const failed = Number(status.failed) || 0;
    const canceled = Number(status.canceled) || 0;
    const percent = Math.max(0, Math.min(100, Math.round(Number(status.percent) || 0)));
    const ready = status.state === "ready";
    this.dataset.state = status.state;
    this._main.hidden = false;
    this._gone.hidden = true;

    this._title.textContent = `Batch of ${plural(total, "car")}`;
    const parts = [];
    if (status.source) parts.push(status.source);
    if (status.jobId) parts.push(`Batch ${String(status.jobId).slice(0, 8)}`);
    if (status.createdAt) {
      const started = new Date(Number(status.createdAt) * 1000);
      parts.push(`started ${started.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`);
    }
    this._subtitle.textContent = parts.join(" · ");

    let badge = "In progress";
    let tone = "run";
    if (status.state === "archiving") badge = "Packing the ZIP";
    if (ready) {
      if (status.stopReason) [badge, tone] = ["Stopped", "bad"];
      else if (canceled) [badge, tone] = ["Cancelled", "warn"];
      else if (failed) [badge, tone] = [`Finished, ${failed} failed`, "warn"];
      else [badge, tone] = ["Finished", "ok"];
    }
    this._badge.hidden = false;
    this._badge.textContent = badge;
    this._badge.dataset.tone = tone;

    this._setBar(percent, done, failed, total);
    this._done.value.textContent = String(done);
    this._failed.value.textContent = String(failed);
    this._failed.item.classList.toggle("has-failures", failed > 0);
    this._total.value.textContent = String(total);
    if (ready) {
      this._eta.name.textContent = "Time taken";
      const took =
        status.finishedAt && status.createdAt ? Number(status.finishedAt) - Number(status.createdAt) : null;
      this._eta.value.textContent = took != null ? durationInWords(took) : "–";
    } else if (status.state === "archiving") {
      this._eta.name.textContent = "Time left";
      this._eta.value.textContent = "Packing the ZIP…";
    } else {
      this._eta.name.textContent = "Time left";
      this._eta.value.textContent = timeLeftInWords(status.etaSeconds);
    }

    this._error.hidden = !status.stopReason;
    this._error.textContent = status.stopReason ? `The batch stopped: ${status.stopReason}` : "";

    this._renderRows(Array.isArray(status.rows) ? status.rows : []);
    this._renderFailed(status);
    this._renderActions(status);
    this._announceProgress(previous, status);
    this._emit("batch-status", { status });
  }

  _announceProgress(previous, status) {
    const total = Number(status.total) || 0;
    const finished = (Number(status.done) || 0) + (Number(status.failed) || 0);
    if (status.state === "ready") {
      if (previous && previous.state === "ready") return;
      const zip = status.zipUrl ? " The ZIP is ready to download." : "";
      this._announce(
        `Batch finished: ${plural(Number(status.done) || 0, "image")} made, ${Number(status.failed) || 0} failed.${zip}`,
      );
      return;
    }
    if (!previous) {
      this._announce(`Batch in progress: ${finished} of ${plural(total, "car")} finished.`);
      return;
    }
    const reached = MILESTONES.filter((mark) => status.percent >= mark && !this._milestones.has(mark));
    for (const mark of MILESTONES) if (status.percent >= mark) this._milestones.add(mark);
    if (reached.length) {
      this._announce(`Batch ${reached[reached.length - 1]}% done: ${finished} of ${total} finished.`);
    }
  }

  _renderRows(rows) {
    const seen = new Set();
    let before = null;
    for (let index = rows.length - 1; index >= 0; index -= 1) {
      const row = rows[index];
      seen.add(row.row);
      let tile = this._tiles.get(row.row);
      if (!tile) {
        tile = this._buildTile(row);
        this._tiles.set(row.row, tile);
      }
      if (tile.node.nextSibling !== before || tile.node.parentNode !== this._grid) {
        this._grid.insertBefore(tile.node, before);
      }
      before = tile.node;
      this._updateTile(tile, row);
    }
    for (const [number, tile] of this._tiles) {
      if (!seen.has(number)) {
        tile.node.remove();
        this._tiles.delete(number);
      }
    }
  }

  _buildTile(row) {
    const node = el("li", "bp-row");
    node.dataset.row = String(row.row);
    const frame = el("div", "bp-thumb");
    const placeholder = el("div", "bp-thumb__placeholder");
    const spinner = el("span", "spinner bp-thumb__spinner");
    spinner.setAttribute("aria-hidden", "true");
    placeholder.append(icon(ICON_IMAGE, "ic-icon bp-thumb__icon"), spinner);
    frame.append(placeholder);
    const text = el("div", "bp-row__text");
    const title = el("p", "bp-row__title");
    const number = el("span", "bp-row__num", `Row ${row.row}`);
    const name = el("span", "bp-row__name");
    name.dataset.part = "row-title";
    title.append(number, name);
    const state = el("p", "bp-row__state");
    state.dataset.part = "row-state";
    text.append(title, state);
    node.append(frame, text);
    return { node, frame, placeholder, name, state, link: null, img: null, thumbUrl: null };
  }

  _updateTile(tile, row) {
    tile.node.dataset.state = row.state;
    const title = String(row.title ?? "");
    if (tile.name.textContent !== title) {
      tile.name.textContent = title;
      tile.name.title = title;
    }
    const words = ROW_WORDS[row.state] || String(row.state);
    const seconds = row.state === "done" ? formatSeconds(row.seconds) : "";
    tile.state.textContent = seconds ? `${words} · ${seconds}` : words;
    tile.node.classList.toggle("is-active", ACTIVE_ROWS.has(row.state));
    if (row.error && row.state !== "done") tile.state.title = String(row.error);
    else tile.state.removeAttribute("title");

    const thumb = row.state === "done" ? row.thumbUrl : null;
    if (thumb && tile.thumbUrl !== thumb) {
      const link = el("a", "bp-thumb__link");
      link.href = row.imageUrl || thumb;
      link.target = "_blank";
      link.rel = "noopener";
      const img = el("img", "bp-thumb__img");
      img.loading = "lazy";
      img.decoding = "async";
      img.alt = `Row ${row.row}: ${title}`;
      img.addEventListener("load", () => tile.node.classList.add("has-image"));
      img.addEventListener("error", () => tile.node.classList.add("is-broken"));
      img.src = thumb;
      link.append(img);
      if (tile.link) tile.link.replaceWith(link);
      else tile.frame.append(link);
      tile.link = link;
      tile.img = img;
      tile.thumbUrl = thumb;
    } else if (!thumb && tile.link) {
      tile.link.remove();
      tile.node.classList.remove("has-image", "is-broken");
      tile.link = tile.img = tile.thumbUrl = null;
    }
  }

  _renderFailed(status) {
    const rows = (Array.isArray(status.rows) ? status.rows : []).filter(
      (row) => row.state === "failed" || row.state === "canceled",
    );
    const count = Number(status.failed) || rows.length;
    this._failedPanel.hidden = count === 0;
    if (!count) {
      this._failedList.replaceChildren();
      return;
    }
    const canceled = rows.filter((row) => row.state === "canceled").length;
    const failed = count - canceled;
    if (!canceled) this._failedTitle.textContent = `${plural(count, "row")} failed`;
    else if (!failed) this._failedTitle.textContent = `${plural(canceled, "row")} cancelled`;
    else this._failedTitle.textContent = `${plural(failed, "row")} failed, ${canceled} cancelled`;
    if (status.failedRowsUrl) {
      this._failedLink.href = status.failedRowsUrl;
      this._failedLink.hidden = false;
    } else {
      this._failedLink.hidden = true;
    }
    const items = rows.map((row) => {
      const item = el("li", "bp-failed__item");
      item.dataset.row = String(row.row);
      const number = el("span", "bp-failed__row", `Row ${row.row}`);
      const title = el("span", "bp-failed__car", String(row.title ?? ""));
      const reason = el(
        "span",
        "bp-failed__reason",
        String(row.error || (row.state === "canceled" ? "Cancelled." : "No reason was recorded.")),
      );
      reason.dataset.part = "reason";
      item.append(number, title, reason);
      return item;
    });
    this._failedList.replaceChildren(...items);
  }

  _renderActions(status) {
    const ready = Boolean(status) && status.state === "ready";
    const running = Boolean(status) && status.state === "running";
    const busy = this._busyAction;

    this._zip.hidden = !(ready && status.zipUrl);
    if (ready && status.zipUrl) {
      this._zip.href = status.zipUrl;
      this._zip.setAttribute("download", "");
    }

    this._cancel.hidden = !running;
    this._cancelHint.hidden = !running;
    this._cancel.disabled = busy === "cancel";
    this._cancel.setAttribute("aria-busy", busy === "cancel" ? "true" : "false");

    // Rows that were never valid, or were cancelled, are not retried; the server counts the rest.
    const retryable = status ? Number(status.retryable) || 0 : 0;
    this._retry.hidden = !(ready && retryable > 0);
    this._retry.disabled = busy === "retry";
    this._retry.setAttribute("aria-busy", busy === "retry" ? "true" : "false");

    this._new.hidden = !ready;
  }
}

if (!customElements.get("batch-progress")) customElements.define("batch-progress", BatchProgress);
