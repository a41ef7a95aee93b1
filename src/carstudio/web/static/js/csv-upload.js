// <csv-upload>: the Batch tab's drop-zone. A CSV arrives by drop, click or keyboard; it is
// checked by the server (which starts nothing) and the intake report is shown: a preview of
// the first rows, how each column was read, and every problem beside the cell it concerns.
// Start Batch stays disabled, with the reason beside it, until the file can run.
//
//   attributes: max-bytes, max-rows, instructions (id of the text that explains the format)
//   events:     "batch-submitted"  detail: {jobId, statusUrl, fileName}
//   methods:    useFile(file), chooseFile(), submit(), reset()
//
// Every value from the file is shown with textContent, never parsed as HTML.

import { ApiError, request } from "./api.js";
import { el, icon } from "./dom.js";

const VALIDATE_URL = "/api/car-batch/validate";
const SUBMIT_URL = "/api/car-batch";
const DEFAULT_MAX_BYTES = 5 * 1024 * 1024;
const DEFAULT_MAX_ROWS = 50;
const MAX_LISTED_PROBLEMS = 20;

const COLUMNS = [
  ["make", "Make"],
  ["model", "Model"],
  ["body_style", "Body style"],
  ["trim", "Trim"],
  ["year", "Year"],
  ["color", "Colour"],
  ["background", "Background"],
  ["aspect_ratio", "Aspect ratio"],
];
const COLUMN_LABELS = Object.fromEntries(COLUMNS);
// What a car gets when its file has no such column (the server fills these in).
const DEFAULTS = { background: "white", aspect_ratio: "1:1" };
const DELIMITER_WORDS = {
  ",": "comma-separated",
  ";": "semicolon-separated",
  "\t": "tab-separated",
  "|": "pipe-separated",
};
const ENCODING_WORDS = {
  "utf-8": "UTF-8",
  "utf-8-sig": "UTF-8",
  "utf-16": "UTF-16",
  "utf-32": "UTF-32",
  cp1252: "Windows-1252 (Western European)",
  "latin-1": "Latin-1",
};

const ICON_UPLOAD = [
  "M7 18.5h-.5a4 4 0 0 1-.6-7.95A5.5 5.5 0 0 1 16.6 8.6 4.5 4.5 0 0 1 17.5 18.5H17",
  "M12 12.5v8",
  "M9 15.5l3-3 3 3",
];
const ICON_FILE = [
  "M7 3.5h6.5L18 8v11.5a1 1 0 0 1-1 1H7a1 1 0 0 1-1-1v-15a1 1 0 0 1 1-1z",
  "M13.5 3.5V8H18",
  "M9 12.5h6M9 16h6",
];

let instances = 0;

function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

/** Bytes for people, rounded up so a file just over a limit never looks equal to it. */
export function formatBytes(bytes) {
  const mib = 1024 * 1024;
  if (bytes >= mib) return `${Math.ceil((bytes / mib) * 10) / 10} MB`;
  if (bytes >= 1024) return `${Math.ceil((bytes / 1024) * 10) / 10} KB`;
  return `${bytes} bytes`;
}

/** How the server folds a header name before matching it: "Body-Style " -> "body_style". */
function headerKey(name) {
  return String(name)
    .trim()
    .toLowerCase()
    .replace(/[\s.\-_]+/g, "_")
    .replace(/^_+|_+$/g, "");
}

/** "Row 3, year: message" from a server detail of any shape. */
function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  if (!detail || typeof detail !== "object") return "";
  const message = String(detail.message ?? detail.msg ?? "").trim();
  const where = [];
  if (detail.row != null) where.push(`Row ${detail.row}`);
  const column = detail.column ?? detail.field;
  if (column) where.push(COLUMN_LABELS[column] || String(column));
  if (!message) return "";
  // The sentence may already name its row; do not say it twice.
  if (where.length && !message.startsWith(where[0])) return `${where.join(", ")}: ${message}`;
  return message;
}

export class CsvUpload extends HTMLElement {
  constructor() {
    super();
    this._built = false;
    this._file = null;
    this._report = null;
    this._problem = null;
    this._check = null;
    this._busy = false;
    this._note = "";
    this._submitError = null;
    this._uid = `csv-upload-${++instances}`;
  }

  connectedCallback() {
    if (!this._built) this._build();
    window.addEventListener("dragover", this._guardDrop);
    window.addEventListener("drop", this._guardDrop);
    this._render();
  }

  disconnectedCallback() {
    window.removeEventListener("dragover", this._guardDrop);
    window.removeEventListener("drop", this._guardDrop);
    if (this._check) this._check.abort();
  }

  /** Largest file accepted, in bytes; bigger ones are refused before anything is sent. */
  get maxBytes() {
    const value = Number(this.getAttribute("max-bytes"));
    return value > 0 ? value : DEFAULT_MAX_BYTES;
  }

  get maxRows() {
    const value = Number(this.getAttribute("max-rows"));
    return value > 0 ? value : DEFAULT_MAX_ROWS;
  }

  /** The chosen File, or null. */
  get file() {
    return this._file;
  }

  /** The intake report of the chosen file, or null when there is none (yet). */
  get report() {
    return this._report;
  }

  /** "empty" | "checking" | "refused" | "blocked" | "ready" | "submitting" */
  get state() {
    return this.dataset.state || "empty";
  }

  get skipInvalid() {
    return this._skip.checked;
  }

  /** Open the browser's file chooser. */
  chooseFile() {
    this._input.click();
  }

  /** Forget the file and show the empty drop-zone again. */
  reset() {
    if (this._check) this._check.abort();
    this._check = null;
    this._file = null;
    this._report = null;
    this._problem = null;
    this._submitError = null;
    this._note = "";
    this._skip.checked = false;
    this._input.value = "";
    this._render();
  }

  /** Check a file with the server and show its intake report. */
  async useFile(file, { note = "" } = {}) {
    if (this._check) this._check.abort();
    this._check = null;
    this._file = file || null;
    this._report = null;
    this._problem = null;
    this._submitError = null;
    this._skip.checked = false;
    this._note = note;
    if (!file) {
      this._render();
      return null;
    }

    if (file.size > this.maxBytes) {
      // Refused here: sending megabytes only to hear "too large" wastes the dealer's time.
      this._problem = {
        message: `${file.name} is ${formatBytes(file.size)}; the limit is ${formatBytes(this.maxBytes)}. Split it into smaller files.`,
        details: [],
      };
      this._render();
      return null;
    }

    const check = new AbortController();
    this._check = check;
    this._render();
    const body = new FormData();
    body.append("file", file, file.name);
    try {
      const report = await request(VALIDATE_URL, { method: "POST", body, signal: check.signal });
      if (this._check !== check) return null;
      this._report = report;
      return report;
    } catch (error) {
      if (this._check !== check || (error && error.name === "AbortError")) return null;
      const known = error instanceof ApiError;
      this._problem = {
        message: known ? error.message : "Car Studio could not check this file; try again.",
        details: known ? error.details : [],
      };
      return null;
    } finally {
      if (this._check === check) {
        this._check = null;
        this._render();
      }
    }
  }

  /** Start the batch with the checked file. Resolves to {jobId, statusUrl} or null. */
  async submit() {
    if (!this._canStart() || this._busy) return null;
    const file = this._file;
    const skip = this._skip.checked && this._report.invalidCount > 0;
    const body = new FormData();
    body.append("file", file, file.name);
    if (skip) body.append("skipInvalid", "true");
    this._busy = true;
    this._submitError = null;
    this._render();
    try {
      const answer = await request(SUBMIT_URL, { method: "POST", body });
      this.dispatchEvent(
        new CustomEvent("batch-submitted", {
          bubbles: true,
          detail: { jobId: answer.jobId, statusUrl: answer.statusUrl, fileName: file.name },
        }),
      );
      return answer;
    } catch (error) {
      const known = error instanceof ApiError;
      this._submitError = {
        message: known ? error.message : "The batch could not be started; try again.",
        details: known ? error.details : [],
      };
      return null;
    } finally {
      this._busy = false;
      this._render();
      if (this._submitError) this._alert.focus();
    }
  }

  // -- building ------------------------------------------------------------------------------

  _build() {
    this._built = true;
    const id = this._uid;

    const zone = el("div", "cu-zone");
    zone.dataset.part = "zone";
    zone.setAttribute("role", "button");
    zone.tabIndex = 0;
    const described = [`${id}-hint`, this.getAttribute("instructions")].filter(Boolean);
    zone.setAttribute("aria-describedby", described.join(" "));
    const zoneIcon = icon(ICON_UPLOAD, "cu-zone__icon");
    this._zoneTitle = el("p", "cu-zone__title");
    this._zoneHint = el("p", "cu-zone__hint");
    this._zoneHint.id = `${id}-hint`;
    zone.append(zoneIcon, this._zoneTitle, this._zoneHint);
    this._zone = zone;

    const input = el("input", "cu-input");
    input.type = "file";
    input.accept = ".csv,text/csv";
    input.hidden = true;
    input.tabIndex = -1;
    input.dataset.part = "input";
    input.setAttribute("aria-label", "CSV file");
    this._input = input;

    const status = el("p", "cu-status");
    status.dataset.part = "status";
    status.setAttribute("role", "status");
    this._status = status;

    const alert = el("div", "form-alert cu-alert");
    alert.dataset.part = "alert";
    alert.setAttribute("role", "alert");
    alert.tabIndex = -1;
    this._alert = alert;

    const report = el("div", "cu-report");
    report.dataset.part = "report";
    report.hidden = true;
    this._reportNode = report;

    const actions = el("div", "cu-actions");
    actions.dataset.part = "actions";
    const skipLabel = el("label", "cu-skip");
    skipLabel.dataset.part = "skip";
    const skip = el("input");
    skip.type = "checkbox";
    skip.name = "skipInvalid";
    skip.dataset.part = "skip-invalid";
    this._skipText = el("span", "cu-skip__text", "Skip invalid rows");
    skipLabel.append(skip, this._skipText);
    this._skip = skip;
    this._skipLabel = skipLabel;

    const reason = el("p", "cu-reason");
    reason.id = `${id}-reason`;
    reason.dataset.part = "reason";
    this._reason = reason;

    const start = el("button", "button button--primary cu-start");
    start.type = "button";
    start.dataset.part = "start";
    start.setAttribute("aria-describedby", reason.id);
    const spinner = el("span", "spinner");
    spinner.setAttribute("aria-hidden", "true");
    this._startLabel = el("span", "button__label", "Start Batch");
    start.append(spinner, this._startLabel);
    this._start = start;

    const actionText = el("div", "cu-actions__text");
    actionText.append(skipLabel, reason);
    actions.append(actionText, start);

    this.replaceChildren(zone, input, status, alert, report, actions);

    zone.addEventListener("click", () => this.chooseFile());
    zone.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        this.chooseFile();
      }
    });
    input.addEventListener("change", () => {
      const file = input.files && input.files[0];
      // Cleared so choosing the same file again (after fixing it) is noticed.
      input.value = "";
      if (file) this.useFile(file);
    });

    let depth = 0;
    zone.addEventListener("dragenter", (event) => {
      if (!this._carriesFiles(event)) return;
      event.preventDefault();
      depth += 1;
      zone.classList.add("is-dragover");
    });
    zone.addEventListener("dragover", (event) => {
      if (!this._carriesFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    zone.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) zone.classList.remove("is-dragover");
    });
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      depth = 0;
      zone.classList.remove("is-dragover");
      const files = Array.from((event.dataTransfer && event.dataTransfer.files) || []);
      if (!files.length) return;
      const note = files.length > 1 ? `Only one file at a time: using ${files[0].name}.` : "";
      this.useFile(files[0], { note });
    });

    skip.addEventListener("change", () => this._render());
    start.addEventListener("click", () => this.submit());

    // A file dropped beside the zone must not make the browser leave the page for it.
    this._guardDrop = (event) => {
      if (this._carriesFiles(event) && !this._zone.contains(event.target)) {
        event.preventDefault();
        if (event.type === "dragover") event.dataTransfer.dropEffect = "none";
      }
    };
  }

  _carriesFiles(event) {
    const types = event.dataTransfer && event.dataTransfer.types;
    return Boolean(types && Array.from(types).includes("Files"));
  }

  _canStart() {
    const report = this._report;
    if (!report || !this._file || this._check) return false;
    if (!report.validCount) return false;
    return report.invalidCount === 0 || this._skip.checked;
  }

  // -- rendering -----------------------------------------------------------------------------

  _render() {
    const file = this._file;
    const checking = Boolean(this._check);
    let state = "empty";
    if (this._busy) state = "submitting";
    else if (checking) state = "checking";
    else if (this._problem) state = "refused";
    else if (this._report) state = this._canStart() ? "ready" : "blocked";
    this.dataset.state = state;
    this.setAttribute("aria-busy", checking || this._busy ? "true" : "false");

    this._renderZone(file);

    this._status.replaceChildren();
    if (checking) {
      const spinner = el("span", "spinner spinner--inline");
      spinner.setAttribute("aria-hidden", "true");
      this._status.append(spinner, document.createTextNode(`Checking ${file.name}…`));
    } else if (this._note) {
      this._status.textContent = this._note;
    }

    this._alert.replaceChildren();
    const problem = this._problem || this._submitError;
    if (problem && !checking) this._fillAlert(problem);

    if (this._report && !checking) this._renderReport(this._report);
    else this._reportNode.replaceChildren();
    this._reportNode.hidden = !this._report || checking;

    this._renderActions(state);
  }

  _renderZone(file) {
    this._zone.classList.toggle("has-file", Boolean(file));
    this._zoneTitle.replaceChildren();
    if (file) {
      const name = el("span", "cu-zone__file", file.name);
      name.dataset.part = "file-name";
      this._zoneTitle.append(name, el("span", "cu-zone__size", ` · ${formatBytes(file.size)}`));
      this._zoneHint.textContent = "Drop another CSV here, or press to choose a different file.";
    } else {
      this._zoneTitle.append(
        document.createTextNode("Drop your CSV here or "),
        el("span", "cu-zone__link", "choose a file"),
      );
      this._zoneHint.textContent = `One .csv file, up to ${formatBytes(this.maxBytes)} and ${this.maxRows} rows.`;
    }
  }

  _fillAlert(problem) {
    const lead = el("p", "form-alert__title", problem.message);
    this._alert.append(lead);
    const lines = (problem.details || [])
      .map(describeDetail)
      .filter((line) => line && line !== problem.message);
    if (lines.length) {
      const list = el("ul", "form-alert__list");
      for (const line of lines.slice(0, MAX_LISTED_PROBLEMS)) list.append(el("li", "", line));
      if (lines.length > MAX_LISTED_PROBLEMS) {
        list.append(el("li", "", `…and ${lines.length - MAX_LISTED_PROBLEMS} more.`));
      }
      this._alert.append(list);
    }
  }

  _renderReport(report) {
    const node = this._reportNode;
    node.replaceChildren();
    const preview = Array.isArray(report.preview) ? report.preview : [];
    const rowCount = Number(report.rowCount) || 0;
    const invalid = Number(report.invalidCount) || 0;
    const valid = Number(report.validCount) || 0;

    // Summary: how many rows, how many can run, and how the file was read.
    const summary = el("div", "cu-summary");
    const counts = el("p", "cu-summary__counts");
    const rowsText = el("strong", "", plural(rowCount, "row"));
    rowsText.dataset.part = "row-count";
    counts.append(rowsText);
    const readyText = el("span", "cu-count cu-count--ok", `${valid} ready`);
    counts.append(readyText);
    if (invalid) {
      const badText = el("span", "cu-count cu-count--bad", `${invalid} need${invalid === 1 ? "s" : ""} fixing`);
      badText.dataset.part = "invalid-count";
      counts.append(badText);
    }
    const encoding = ENCODING_WORDS[String(report.encoding || "").toLowerCase()] || report.encoding;
    const delimiter = DELIMITER_WORDS[report.delimiter] || `separated by “${report.delimiter}”`;
    const format = el("p", "cu-summary__format", `Read as ${encoding}, ${delimiter}.`);
    format.dataset.part = "format";
    summary.append(counts, format);

    // Columns: what each header became; unknown ones are ignored, and say so.
    const columns = el("div", "cu-columns");
    const columnsTitle = el("h3", "cu-subtitle", "Columns");
    columnsTitle.id = `${this._uid}-columns`;
    const chips = el("ul", "cu-chips");
    chips.setAttribute("aria-labelledby", columnsTitle.id);
    const present = new Set();
    for (const header of report.headers || []) {
      const name = String(header.name ?? "");
      const chip = el("li", "cu-chip");
      chip.dataset.header = name;
      if (header.mappedTo) {
        present.add(header.mappedTo);
        if (headerKey(name) === header.mappedTo) {
          chip.classList.add("cu-chip--known");
          chip.dataset.status = "known";
          chip.textContent = name;
        } else {
          chip.classList.add("cu-chip--mapped");
          chip.dataset.status = "mapped";
          chip.textContent = `${name} → ${header.mappedTo}`;
          chip.title = `“${name}” is read as ${header.mappedTo}.`;
        }
      } else {
        chip.classList.add("cu-chip--ignored");
        chip.dataset.status = "ignored";
        chip.append(el("span", "cu-chip__name", name), el("span", "cu-chip__tag", "ignored"));
        chip.title = `“${name}” is not a column Car Studio knows; it is ignored.`;
      }
      chips.append(chip);
    }
    columns.append(columnsTitle, chips);
    const notes = [];
    const unknown = report.unknownHeaders || [];
    if (unknown.length) {
      notes.push(
        `${plural(unknown.length, "column")} Car Studio does not know ${unknown.length === 1 ? "is" : "are"} ignored.`,
      );
    }
    const missing = COLUMNS.filter(([key]) => !present.has(key)).map(([key]) => key);
    const blank = missing.filter((key) => !(key in DEFAULTS));
    const defaulted = missing.filter((key) => key in DEFAULTS);
    if (blank.length) notes.push(`Not in this file: ${blank.join(", ")} (left blank).`);
    if (defaulted.length) {
      const values = defaulted.map((key) => DEFAULTS[key]).join(" and ");
      notes.push(`No ${defaulted.join(" or ")} column: every car gets ${values}.`);
    }
    if (notes.length) columns.append(el("p", "cu-note", notes.join(" ")));

    node.append(summary, columns, this._previewTable(preview, rowCount));

    // Problems in rows the preview does not show.
    const shown = new Set(preview.map((item) => item.row));
    const further = (report.rowErrors || []).filter((error) => !shown.has(error.row));
    if (further.length) {
      const box = el("div", "cu-further");
      box.dataset.part = "further-problems";
      box.append(el("h3", "cu-subtitle", "Problems further down the file"));
      const list = el("ul", "cu-further__list");
      for (const error of further.slice(0, MAX_LISTED_PROBLEMS)) {
        list.append(el("li", "", describeDetail(error)));
      }
      if (further.length > MAX_LISTED_PROBLEMS) {
        list.append(el("li", "", `…and ${further.length - MAX_LISTED_PROBLEMS} more.`));
      }
      box.append(list);
      node.append(box);
    }
  }

  _previewTable(preview, rowCount) {
    const wrap = el("div", "cu-table-wrap");
    // Scrolls sideways on narrow screens; focusable so the keyboard can scroll it too.
    wrap.tabIndex = 0;
    wrap.setAttribute("role", "region");
    const table = el("table", "cu-table");
    table.dataset.part = "preview";
    const caption = el(
      "caption",
      "cu-table__caption",
      rowCount > preview.length
        ? `Preview: the first ${preview.length} of ${rowCount} rows`
        : `Preview: all ${plural(rowCount, "row")}`,
    );
    caption.id = `${this._uid}-caption`;
    wrap.setAttribute("aria-labelledby", caption.id);
    table.append(caption);

    const head = el("thead");
    const headRow = el("tr");
    const rowHead = el("th", "cu-table__num", "Row");
    rowHead.scope = "col";
    rowHead.title = "Row number in your spreadsheet (the header is row 1)";
    headRow.append(rowHead);
    for (const [, label] of COLUMNS) {
      const th = el("th", "", label);
      th.scope = "col";
      headRow.append(th);
    }
    const statusHead = el("th", "", "Status");
    statusHead.scope = "col";
    headRow.append(statusHead);
    head.append(headRow);

    const body = el("tbody");
    for (const item of preview) {
      const tr = el("tr");
      tr.dataset.row = String(item.row);
      const errors = Array.isArray(item.errors) ? item.errors : [];
      const valid = item.valid !== false && !errors.length;
      tr.classList.toggle("is-invalid", !valid);
      const num = el("th", "cu-table__num", String(item.row));
      num.scope = "row";
      tr.append(num);

      const byColumn = new Map();
      const general = [];
      for (const error of errors) {
        if (error.column && COLUMN_LABELS[error.column]) {
          const list = byColumn.get(error.column) || [];
          list.push(String(error.message || "Not valid."));
          byColumn.set(error.column, list);
        } else {
          general.push(String(error.message || "Not valid."));
        }
      }

      const values = item.values || {};
      for (const [key] of COLUMNS) {
        const td = el("td");
        td.dataset.column = key;
        const value = values[key] == null ? "" : String(values[key]);
        if (value) {
          td.append(el("span", "cu-cell__value", value));
        } else {
          const dash = el("span", "cu-cell__empty", "—");
          dash.setAttribute("aria-hidden", "true");
          td.append(dash, el("span", "visually-hidden", "empty"));
        }
        const messages = byColumn.get(key);
        if (messages) {
          td.classList.add("is-invalid");
          td.dataset.invalid = "true";
          td.title = messages.join(" ");
          const message = el("span", "cu-cell__error", messages.join(" "));
          message.dataset.part = "cell-error";
          td.append(message);
        }
        tr.append(td);
      }

      const status = el("td", "cu-table__status");
      if (valid) {
        status.append(el("span", "cu-badge cu-badge--ok", "Ready"));
      } else {
        status.append(el("span", "cu-badge cu-badge--bad", "Needs fixing"));
        for (const message of general) status.append(el("span", "cu-cell__error", message));
        if (general.length) status.title = general.join(" ");
      }
      tr.append(status);
      body.append(tr);
    }
    table.append(head, body);
    wrap.append(table);
    return wrap;
  }

  _renderActions(state) {
    const report = this._report;
    let reason = "";
    let tone = "muted";
    const invalid = report ? Number(report.invalidCount) || 0 : 0;
    const valid = report ? Number(report.validCount) || 0 : 0;
    const canSkip = Boolean(report) && invalid > 0 && valid > 0 && state !== "checking";

    if (state === "empty") {
      reason = "Choose a CSV file to see its preview.";
    } else if (state === "checking") {
      reason = "Checking the file…";
    } else if (state === "refused") {
      reason = "This file cannot be used; choose another one.";
      tone = "bad";
    } else if (state === "submitting") {
      reason = "Starting the batch…";
    } else if (report && !valid) {
      reason = "No row in this file can become an image; fix it and upload it again.";
      tone = "bad";
    } else if (report && invalid && !this._skip.checked) {
      reason = `${plural(invalid, "row needs", "rows need")} fixing. Correct ${invalid === 1 ? "it" : "them"} and upload the file again, or skip invalid rows to make the other ${plural(valid, "image")}.`;
      tone = "bad";
    } else if (report && invalid) {
      reason = `${plural(valid, "image")} will be made; the ${plural(invalid, "invalid row")} will be listed in failed_rows.json.`;
    } else if (report) {
      reason = `Ready to make ${plural(valid, "image")}.`;
      tone = "ok";
    }

    this._skipLabel.hidden = !canSkip;
    this._skip.disabled = state === "submitting";
    if (canSkip) {
      this._skipText.textContent = `Skip invalid rows (${invalid}) and make the ${plural(valid, "valid one")}`;
      if (valid === 1) this._skipText.textContent = `Skip invalid rows (${invalid}) and make the valid one`;
    }
    this._reason.textContent = reason;
    this._reason.dataset.tone = tone;
    this._start.disabled = state !== "ready";
    this._start.setAttribute("aria-busy", state === "submitting" ? "true" : "false");
    this._startLabel.textContent = state === "submitting" ? "Starting…" : "Start Batch";
  }
}

if (!customElements.get("csv-upload")) customElements.define("csv-upload", CsvUpload);
