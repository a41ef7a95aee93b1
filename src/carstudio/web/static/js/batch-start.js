// <batch-start>: the Start Batch button, the "Skip invalid rows" choice, the image model, the
// sentence beside them saying why a batch can or cannot start yet, and what the batch would
// cost (the validate answer's estimate). It decides whether the checked file can run; starting
// it is left to whoever listens. Its markup is the page's <template id="batch-start-template">.
//
//   events:   "start-batch"  detail: {skipInvalid, imageModel, fresh, nameTemplate, output}   Start
//                            Batch was pressed
//             "change"       (bubbling) the skip choice, the model, "Make new images" or the
//                            file names changed; event.target.name says which: "skipInvalid" |
//                            "imageModel" | "fresh" | "nameTemplate"
//   A file of which too little was understood (a warning with `confirm`) shows that warning
//   beside Start and a box to tick; Start waits for it.
//   methods:  show(phase, report)  phase: "empty" | "checking" | "refused" | "checked"
//                                  | "repricing" (checked, and being checked again for another
//                                  model) | "submitting"
//             reset()
//   property: state  "empty" | "checking" | "refused" | "blocked" | "ready" | "submitting"
//             skipInvalid  whether invalid rows are to be skipped (only when some are)
//             imageModel   the model chosen for the batch
//             fresh        whether "Make new images" is ticked (no image made before is reused)
//             nameTemplate how the images are to be named ("" for the server's default)

import { cloneTemplate, emit, partsOf, setBusy } from "./dom.js";
import { plural } from "./format.js";
import { estimateInWords } from "./batch-words.js";

const NAMES_PAUSE_MS = 500;

/** The warning a person must confirm before the batch can start, or null. */
function seriousWarning(report) {
  const warnings = (report && Array.isArray(report.warnings) && report.warnings) || [];
  return warnings.find((warning) => warning.confirm) || null;
}

export class BatchStart extends HTMLElement {
  constructor() {
    super();
    this._parts = null;
    this._state = "empty";
  }

  connectedCallback() {
    if (this._parts) return;
    const content = cloneTemplate("batch-start-template");
    this._parts = partsOf(content);
    this.replaceChildren(content);
    // The file names are checked (and the preview's names redrawn) once typing pauses, not on
    // blur: a blur from pressing Start would otherwise re-check the file under the click.
    const names = this._parts.nameTemplate;
    names.addEventListener("change", (event) => {
      if (event.isTrusted) event.stopPropagation();
    });
    names.addEventListener("input", () => {
      clearTimeout(this._namesTimer);
      this._namesTimer = setTimeout(() => {
        names.dispatchEvent(new Event("change", { bubbles: true }));
      }, NAMES_PAUSE_MS);
    });
    this._parts.start.addEventListener("click", () => {
      if (this._state === "ready") {
        const { skipInvalid, imageModel, fresh, nameTemplate, output } = this;
        emit(this, "start-batch", { skipInvalid, imageModel, fresh, nameTemplate, output });
      }
    });
    this.show("empty", null);
  }

  get state() {
    return this._state;
  }

  get skipInvalid() {
    return !this._parts.skip.hidden && this._parts.skipInvalid.checked;
  }

  get imageModel() {
    return this._parts.imageModel.value;
  }

  get fresh() {
    return this._parts.fresh.checked;
  }

  get nameTemplate() {
    return this._parts.nameTemplate.value.trim();
  }

  /** The files delivered (an output preset). */
  get output() {
    return this._parts.output.value;
  }

  /** Forget the skip choice and the confirmation; the model, "Make new images" and the file
   *  names stay as chosen, for the next file. */
  reset() {
    this._parts.skipInvalid.checked = false;
    this._parts.confirmColumns.checked = false;
  }

  /** Show where the file stands; a checked file becomes "ready" or "blocked". */
  show(phase, report) {
    const { skip, skipInvalid, skipText, reason, start, imageModel, fresh, nameTemplate } = this._parts;
    const valid = report ? Number(report.validCount) || 0 : 0;
    const invalid = report ? Number(report.invalidCount) || 0 : 0;
    const checked = phase === "checked" || phase === "repricing";
    const canSkip = (checked || phase === "submitting") && invalid > 0 && valid > 0;
    skip.hidden = !canSkip;
    const locked = phase === "submitting";
    skipInvalid.disabled = imageModel.disabled = fresh.disabled = nameTemplate.disabled = locked;
    this._parts.output.disabled = locked;
    skipText.textContent =
      valid === 1
        ? `Skip invalid rows (${invalid}) and make the valid one`
        : `Skip invalid rows (${invalid}) and make the ${plural(valid, "valid one")}`;

    // A file barely understood (one car field of many columns) starts only once confirmed.
    const { confirm, confirmColumns } = this._parts;
    const doubt = checked || phase === "submitting" ? seriousWarning(report) : null;
    confirm.hidden = !doubt || !valid;
    confirmColumns.disabled = phase === "submitting";
    const confirmed = !doubt || confirmColumns.checked;

    // Start waits while the file is priced again, so the batch never starts on an old estimate.
    let state = phase === "repricing" ? "checking" : phase;
    if (phase === "checked") {
      state = valid && (!invalid || skipInvalid.checked) && confirmed ? "ready" : "blocked";
    }
    this._state = state;

    let [text, tone] = this._reason(checked ? "checked" : phase, valid, invalid);
    if (checked && valid && !confirmed) [text, tone] = [doubt.message, "bad"];
    reason.textContent = text;
    reason.dataset.tone = tone;
    setBusy(start, phase === "submitting", phase === "submitting" ? "Starting…" : "Start Batch");
    start.disabled = state !== "ready";
    this._showEstimate(phase, report, valid);
  }

  _showEstimate(phase, report, valid) {
    const { estimate } = this._parts;
    const shown = valid > 0 && report.estimate && ["checked", "repricing", "submitting"].includes(phase);
    estimate.hidden = !shown;
    if (!shown) estimate.textContent = "";
    else if (phase === "repricing") estimate.textContent = "Working out the cost…";
    else estimate.textContent = estimateInWords(report.estimate);
  }

  _reason(phase, valid, invalid) {
    if (phase === "empty") return ["Choose a CSV or Excel file to see its preview.", "muted"];
    if (phase === "checking") return ["Checking the file…", "muted"];
    if (phase === "refused") return ["This file cannot be used; choose another one.", "bad"];
    if (phase === "submitting") return ["Starting the batch…", "muted"];
    if (!valid) {
      return ["No row in this file can become an image; fix it and upload it again.", "bad"];
    }
    if (invalid && !this._parts.skipInvalid.checked) {
      const them = invalid === 1 ? "it" : "them";
      return [
        `${plural(invalid, "row needs", "rows need")} fixing. Correct ${them} and upload the file again, or skip invalid rows to make the other ${plural(valid, "image")}.`,
        "bad",
      ];
    }
    if (invalid) {
      return [
        `${plural(valid, "image")} will be made; the ${plural(invalid, "invalid row")} will be listed in failed_rows.json.`,
        "muted",
      ];
    }
    return [`Ready to make ${plural(valid, "image")}.`, "ok"];
  }
}

if (!customElements.get("batch-start")) customElements.define("batch-start", BatchStart);
