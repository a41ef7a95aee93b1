// <batch-tab>: the Batch tab, wiring its parts together. A file taken by <csv-drop-zone> is
// checked by the server (POST /api/car-batch/validate, which starts nothing) and its answer
// shown by <intake-report>; <batch-start> says whether the file can run and what it would cost
// with the chosen model (a new model, or ticking "Make new images", checks the file again, for
// its estimate), and Start Batch sends it (POST /api/car-batch, with skipInvalid when chosen,
// the imageModel, and fresh when images made before are not to be reused); then
// <batch-progress> follows the batch. The batch's id lives in the address (#batch/<id>), so a
// reload or a shared link shows the same batch again, and <recent-batches> under the drop-zone
// links to earlier ones the same way. `?poll=<ms>` in the address sets how often progress is
// polled.
//
//   markup:   server-rendered inside the element: #batch-intake holding the drop-zone, the
//             status line, the alert, the report, the start controls and <recent-batches>;
//             <batch-progress>
//   state:    #batch-intake[data-state] "empty" | "checking" | "refused" | "blocked" | "ready"
//             | "submitting" ("checking" too while a checked file is priced for another model)
//   property: hash  the address hash the tab should carry now: "batch" or "batch/<id>"
//   methods:  reset()

import { ApiError, request } from "./api.js";
import { describeDetail } from "./car-fields.js";
import { fillAlert } from "./dom.js";
import "./csv-drop-zone.js";
import "./intake-report.js";
import "./batch-start.js";
import "./batch-progress.js";
import "./recent-batches.js";

const VALIDATE_URL = "/api/car-batch/validate";
const SUBMIT_URL = "/api/car-batch";
const MAX_LISTED_PROBLEMS = 20;
const JOB_HASH = /^#batch\/([0-9a-f]{32})$/i;

/** The batch id in an address hash like "#batch/<id>", or null. */
export function jobFromHash(hash = location.hash) {
  const match = JOB_HASH.exec(hash || "");
  return match ? match[1].toLowerCase() : null;
}

/** What to tell the person about a failed request: its sentence and the server's details. */
function problemFrom(error, fallback) {
  const known = error instanceof ApiError;
  const message = known ? error.message : fallback;
  const lines = (known ? error.details : [])
    .map(describeDetail)
    .filter((line) => line && line !== message);
  return { message, lines };
}

export class BatchTab extends HTMLElement {
  constructor() {
    super();
    this._intake = null;
    this._file = null;
    this._report = null;
    this._problem = null;
    this._submitError = null;
    this._check = null;
    this._submitting = false;
    this._note = "";
    this._jobId = null;
    this._followHash = () => {
      const id = jobFromHash();
      // A followed link (Recent batches, Back) replaced what was read: start at its title.
      if (id && id !== this._jobId) this._showBatch(id, { focus: true });
      else if (!id && location.hash === "#batch" && this._jobId) this._showIntake();
    };
  }

  connectedCallback() {
    if (this._intake) return;
    const intake = this.querySelector("#batch-intake");
    this._intake = intake;
    this._zone = intake.querySelector("csv-drop-zone");
    this._reportView = intake.querySelector("intake-report");
    this._start = intake.querySelector("batch-start");
    this._statusSpinner = intake.querySelector('[data-part="status-spinner"]');
    this._statusText = intake.querySelector('[data-part="status-text"]');
    this._alert = intake.querySelector('[data-part="alert"]');
    this._progress = this.querySelector("batch-progress");
    this._recent = intake.querySelector("recent-batches");

    const poll = Number(new URLSearchParams(location.search).get("poll"));
    if (Number.isFinite(poll) && poll > 0) this._progress.setAttribute("poll-interval", String(poll));

    this._zone.addEventListener("csv-chosen", (event) => this._checkFile(event.detail));
    this._zone.addEventListener("csv-refused", (event) => this._refuse(event.detail));
    this._start.addEventListener("change", (event) => {
      // Another model has another price, new images forgo the ones made before, and other
      // file names change the preview: a file the server has seen is asked again (also after
      // it refused the file names, which may now be right).
      const repriced = ["imageModel", "fresh", "nameTemplate"].includes(event.target.name);
      if (repriced && (this._report || this._check || this._sent)) this._validate();
      else this._render();
    });
    this._start.addEventListener("start-batch", (event) => this._submit(event.detail));
    this._progress.addEventListener("batch-new", () => {
      this._showIntake({ focus: true });
      this._remember();
    });
    window.addEventListener("hashchange", this._followHash);

    const initial = jobFromHash();
    if (initial) this._showBatch(initial);
    this._render();
  }

  disconnectedCallback() {
    window.removeEventListener("hashchange", this._followHash);
  }

  get hash() {
    return this._jobId ? `batch/${this._jobId}` : "batch";
  }

  /** Forget the file and show the empty drop-zone again. */
  reset() {
    if (this._check) this._check.abort();
    this._check = null;
    this._clear(null);
    this._zone.reset();
    this._render();
  }

  _clear(file, note = "") {
    this._file = file;
    this._sent = false;
    this._report = this._problem = this._submitError = null;
    this._note = note;
    this._start.reset();
  }

  _checkFile({ file, note }) {
    this._clear(file, note);
    this._validate();
  }

  /** Check the chosen file with the chosen model; its report keeps showing meanwhile, if any. */
  async _validate() {
    if (this._check) this._check.abort();
    const check = new AbortController();
    this._check = check;
    this._problem = this._submitError = null;
    this._render();
    const body = new FormData();
    body.append("file", this._file, this._file.name);
    this._sent = true;
    const imageModel = this._start.imageModel;
    if (imageModel) body.append("imageModel", imageModel);
    if (this._start.fresh) body.append("fresh", "true");
    if (this._start.nameTemplate) body.append("nameTemplate", this._start.nameTemplate);
    try {
      const report = await request(VALIDATE_URL, { method: "POST", body, signal: check.signal });
      if (this._check === check) this._report = report;
    } catch (error) {
      if (this._check !== check || (error && error.name === "AbortError")) return;
      this._report = null;
      this._problem = problemFrom(error, "Car Studio could not check this file; try again.");
    } finally {
      if (this._check === check) {
        this._check = null;
        this._render();
      }
    }
  }

  _refuse({ file, message }) {
    if (this._check) this._check.abort();
    this._check = null;
    this._clear(file);
    this._problem = { message, lines: [] };
    this._render();
  }

  async _submit({ skipInvalid, imageModel, fresh, nameTemplate, output }) {
    if (this._start.state !== "ready") return;
    const file = this._file;
    const body = new FormData();
    body.append("file", file, file.name);
    if (skipInvalid) body.append("skipInvalid", "true");
    if (imageModel) body.append("imageModel", imageModel);
    if (fresh) body.append("fresh", "true");
    if (nameTemplate) body.append("nameTemplate", nameTemplate);
    if (output) body.append("output", output);
    this._submitting = true;
    this._submitError = null;
    this._render();
    let answer = null;
    try {
      answer = await request(SUBMIT_URL, { method: "POST", body });
    } catch (error) {
      this._submitError = problemFrom(error, "The batch could not be started; try again.");
    } finally {
      this._submitting = false;
      this._render();
    }
    if (answer) {
      this._showBatch(answer.jobId, { focus: true });
      this._remember();
      this._recent.refresh();
    } else {
      this._alert.focus();
    }
  }

  _remember() {
    history.replaceState(null, "", `#${this.hash}`);
  }

  _showBatch(id, { focus = false } = {}) {
    this._jobId = id;
    this._intake.hidden = true;
    this._progress.hidden = false;
    this._progress.jobId = id;
    if (focus) this._progress.focusTitle();
  }

  _showIntake({ focus = false } = {}) {
    this._jobId = null;
    this._progress.jobId = "";
    this._progress.hidden = true;
    this._intake.hidden = false;
    this.reset();
    this._recent.refresh();
    if (focus) this._zone.focus();
  }

  _render() {
    const checking = Boolean(this._check);
    const repricing = checking && Boolean(this._report);
    let phase = "empty";
    if (this._submitting) phase = "submitting";
    else if (repricing) phase = "repricing";
    else if (checking) phase = "checking";
    else if (this._problem) phase = "refused";
    else if (this._report) phase = "checked";
    this._start.show(phase, this._report);
    this._intake.dataset.state = this._start.state;
    this._intake.setAttribute("aria-busy", checking || this._submitting ? "true" : "false");

    // Pricing a checked file again is said beside Start Batch, not as a new check of the file.
    const newFile = checking && !repricing;
    this._statusSpinner.hidden = !newFile;
    this._statusText.textContent = newFile ? `Checking ${this._file.name}…` : this._note;

    const problem = checking ? null : this._problem || this._submitError;
    fillAlert(this._alert, problem ? problem.message : "", problem ? problem.lines : [], {
      max: MAX_LISTED_PROBLEMS,
    });

    if (this._reportView.report !== this._report) this._reportView.report = this._report;
    this._reportView.hidden = !this._report;
  }
}

if (!customElements.get("batch-tab")) customElements.define("batch-tab", BatchTab);
