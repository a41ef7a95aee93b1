// <intake-report>: what the server made of a CSV, i.e. the answer of
// POST /api/car-batch/validate. It shows how many rows can run, how the file was read, what
// each column became, a preview of the first rows with every problem beside its cell, and the
// problems further down. Everything it says about the file comes from that answer; its markup
// is the page's <template id="intake-report-template">. Values from the file are set as text.
//
//   property: report  a validate answer; null empties the view

import { describeDetail } from "./car-fields.js";
import { cloneTemplate, el, partsOf } from "./dom.js";
import { plural } from "./format.js";

const MAX_LISTED_PROBLEMS = 20;

export class IntakeReport extends HTMLElement {
  constructor() {
    super();
    this._report = null;
  }

  get report() {
    return this._report;
  }

  set report(value) {
    this._report = value || null;
    if (!this._report) {
      this.replaceChildren();
      return;
    }
    // A fresh copy per file: nothing of the previous file can linger.
    const content = cloneTemplate("intake-report-template");
    const parts = partsOf(content);
    this._summary(parts, this._report);
    this._notices(parts, this._report);
    this._columns(parts, this._report);
    this._preview(parts, this._report);
    this._further(parts, this._report);
    this.replaceChildren(content);
  }

  _summary(parts, report) {
    const rows = Number(report.rowCount) || 0;
    const valid = Number(report.validCount) || 0;
    const invalid = Number(report.invalidCount) || 0;
    parts.rowCount.textContent = plural(rows, "row");
    parts.validCount.textContent = `${valid} ready`;
    parts.invalidCount.textContent = `${invalid} need${invalid === 1 ? "s" : ""} fixing`;
    parts.invalidCount.hidden = !invalid;
    parts.format.textContent = `Read as ${report.encodingLabel}, ${report.delimiterLabel}.`;
  }

  /** What the file as a whole asks the person to check: a column chosen over another, a
   *  header that looks like a car field but was not used, a file barely understood. */
  _notices(parts, report) {
    const warnings = Array.isArray(report.warnings) ? report.warnings : [];
    parts.notices.hidden = !warnings.length;
    for (const warning of warnings) {
      const item = el("li", `cu-notice cu-notice--${warning.kind}`, String(warning.message));
      item.dataset.kind = warning.kind;
      if (warning.confirm) item.classList.add("cu-cell__error");
      parts.noticeList.append(item);
    }
  }

  /** One chip per header, saying what it became; then what the file lacks. */
  _columns(parts, report) {
    for (const header of report.headers || []) {
      const name = String(header.name ?? "");
      const chip = el("li", `cu-chip cu-chip--${header.status}`);
      chip.dataset.header = name;
      chip.dataset.status = header.status;
      if (header.status === "ignored") {
        chip.append(el("span", "cu-chip__name", name), el("span", "cu-chip__tag", "extra"));
        chip.title = `“${name}” is not a car field; it is kept in manifest.json as it is.`;
      } else if (header.status === "unused") {
        chip.append(el("span", "cu-chip__name", name), el("span", "cu-chip__tag", "extra"));
        chip.title = `Another column supplies ${header.mappedTo}; “${name}” is kept as extra.`;
      } else if (header.status === "mapped") {
        chip.textContent = `${name} → ${header.mappedTo}`;
        chip.title = `“${name}” is read as ${header.mappedTo}.`;
      } else {
        chip.textContent = name;
      }
      parts.chips.append(chip);
    }

    const notes = [];
    const unknown = report.unknownHeaders || [];
    if (unknown.length) {
      const verb = unknown.length === 1 ? "is" : "are";
      notes.push(
        `${plural(unknown.length, "column")} Car Studio does not use for the image ${verb} kept in manifest.json.`,
      );
    }
    const missing = (report.columns || []).filter((column) => !column.present);
    const blank = missing.filter((column) => !column.default);
    const defaulted = missing.filter((column) => column.default);
    if (blank.length) {
      notes.push(`Not in this file: ${blank.map((column) => column.name).join(", ")} (left blank).`);
    }
    if (defaulted.length) {
      const names = defaulted.map((column) => column.name).join(" or ");
      const values = defaulted.map((column) => column.default).join(" and ");
      notes.push(`No ${names} column: every car gets ${values}.`);
    }
    parts.columnNote.textContent = notes.join(" ");
    parts.columnNote.hidden = !notes.length;
  }

  /** The first rows as the server read them, each problem in the cell it concerns. */
  _preview(parts, report) {
    const preview = Array.isArray(report.preview) ? report.preview : [];
    const rows = Number(report.rowCount) || 0;
    const columns = report.columns || [];
    parts.caption.textContent =
      rows > preview.length
        ? `Preview: the first ${preview.length} of ${rows} rows`
        : `Preview: all ${plural(rows, "row")}`;
    for (const column of columns) {
      const heading = el("th", "", column.label);
      heading.scope = "col";
      parts.statusHeading.before(heading);
    }
    const known = new Set(columns.map((column) => column.name));
    for (const item of preview) parts.rows.append(this._row(item, columns, known));
  }

  _row(item, columns, known) {
    const tr = el("tr");
    tr.dataset.row = String(item.row);
    const errors = Array.isArray(item.errors) ? item.errors : [];
    const valid = item.valid !== false && !errors.length;
    tr.classList.toggle("is-invalid", !valid);
    const number = el("th", "cu-table__num", String(item.row));
    number.scope = "row";
    tr.append(number);

    const byColumn = new Map();
    const general = [];
    for (const error of errors) {
      const message = String(error.message || "Not valid.");
      if (error.column && known.has(error.column)) {
        byColumn.set(error.column, [...(byColumn.get(error.column) || []), message]);
      } else {
        general.push(message);
      }
    }

    const values = item.values || {};
    for (const { name } of columns) {
      const td = el("td");
      td.dataset.column = name;
      const value = values[name] == null ? "" : String(values[name]);
      if (value) {
        td.append(el("span", "cu-cell__value", value));
      } else {
        const dash = el("span", "cu-cell__empty", "—");
        dash.setAttribute("aria-hidden", "true");
        td.append(dash, el("span", "visually-hidden", "empty"));
      }
      const doubts = (item.warnings || []).filter((warning) => warning.column === name);
      if (doubts.length) {
        // A doubtful value (a VIN whose check digit does not add up) runs, but is pointed out.
        const words = doubts.map((warning) => String(warning.message)).join(" ");
        const note = el("span", "cu-cell__warning", words);
        note.dataset.part = "cell-warning";
        td.dataset.warning = "true";
        td.title = words;
        td.append(note);
      }
      const messages = byColumn.get(name);
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
      if (item.fileName) {
        // The name its image will get in the ZIP, so the dealer can match it to the car.
        const name = el("span", "cu-cell__value", ` ${item.fileName}`);
        name.dataset.part = "image-name";
        status.append(name);
      }
    } else {
      status.append(el("span", "cu-badge cu-badge--bad", "Needs fixing"));
      for (const message of general) status.append(el("span", "cu-cell__error", message));
      if (general.length) status.title = general.join(" ");
    }
    tr.append(status);
    return tr;
  }

  /** Problems in rows the preview does not show. */
  _further(parts, report) {
    const shown = new Set((report.preview || []).map((item) => item.row));
    const further = (report.rowErrors || []).filter((error) => !shown.has(error.row));
    parts.furtherProblems.hidden = !further.length;
    for (const error of further.slice(0, MAX_LISTED_PROBLEMS)) {
      parts.furtherList.append(el("li", "", describeDetail(error)));
    }
    if (further.length > MAX_LISTED_PROBLEMS) {
      parts.furtherList.append(el("li", "", `…and ${further.length - MAX_LISTED_PROBLEMS} more.`));
    }
  }
}

if (!customElements.get("intake-report")) customElements.define("intake-report", IntakeReport);
