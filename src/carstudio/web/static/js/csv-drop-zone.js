// <csv-drop-zone>: takes one CSV or Excel (.xlsx) file, by drop, click or keyboard (Enter,
// Space), and says which file it holds. It sends nothing: whoever listens checks the file with the server.
// A file over the size limit is refused here, since uploading megabytes only to hear "too
// large" wastes a dealer's time. Its markup is the page's <template id="csv-drop-zone-template">.
//
//   attributes: max-bytes  largest file accepted (5 MB when absent)
//   events:     "csv-chosen"   detail: {file, note}     note says when extra files were dropped
//               "csv-refused"  detail: {file, message}  too large; nothing should be sent
//   methods:    chooseFile(), reset(), focus()
//   property:   file (the File shown, or null)

import { cloneTemplate, emit, partsOf } from "./dom.js";
import { formatBytes } from "./format.js";

const DEFAULT_MAX_BYTES = 5 * 1024 * 1024;

function carriesFiles(event) {
  const types = event.dataTransfer && event.dataTransfer.types;
  return Boolean(types && Array.from(types).includes("Files"));
}

export class CsvDropZone extends HTMLElement {
  constructor() {
    super();
    this._parts = null;
    this._file = null;
    this._depth = 0;
    // A file dropped beside the zone must not make the browser leave the page for it.
    this._guardDrop = (event) => {
      if (carriesFiles(event) && !this._parts.zone.contains(event.target)) {
        event.preventDefault();
        if (event.type === "dragover") event.dataTransfer.dropEffect = "none";
      }
    };
  }

  connectedCallback() {
    if (!this._parts) this._build();
    window.addEventListener("dragover", this._guardDrop);
    window.addEventListener("drop", this._guardDrop);
  }

  disconnectedCallback() {
    window.removeEventListener("dragover", this._guardDrop);
    window.removeEventListener("drop", this._guardDrop);
  }

  /** Largest file accepted, in bytes. */
  get maxBytes() {
    const value = Number(this.getAttribute("max-bytes"));
    return value > 0 ? value : DEFAULT_MAX_BYTES;
  }

  get file() {
    return this._file;
  }

  /** Open the browser's file chooser. */
  chooseFile() {
    this._parts.input.click();
  }

  /** Forget the file and invite one again. */
  reset() {
    this._file = null;
    this._parts.input.value = "";
    this._show(null);
  }

  focus(options) {
    this._parts.zone.focus(options);
  }

  _build() {
    const content = cloneTemplate("csv-drop-zone-template");
    const parts = partsOf(content);
    this._parts = parts;
    this.replaceChildren(content);
    const { zone, input } = parts;

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
      if (file) this._accept(file);
    });

    zone.addEventListener("dragenter", (event) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      this._depth += 1;
      zone.classList.add("is-dragover");
    });
    zone.addEventListener("dragover", (event) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    zone.addEventListener("dragleave", () => {
      this._depth = Math.max(0, this._depth - 1);
      if (!this._depth) zone.classList.remove("is-dragover");
    });
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      this._depth = 0;
      zone.classList.remove("is-dragover");
      const files = Array.from((event.dataTransfer && event.dataTransfer.files) || []);
      if (!files.length) return;
      const note = files.length > 1 ? `Only one file at a time: using ${files[0].name}.` : "";
      this._accept(files[0], note);
    });
  }

  _accept(file, note = "") {
    this._file = file;
    this._show(file);
    if (file.size > this.maxBytes) {
      const message = `${file.name} is ${formatBytes(file.size)}; the limit is ${formatBytes(this.maxBytes)}. Split it into smaller files.`;
      emit(this, "csv-refused", { file, message });
    } else {
      emit(this, "csv-chosen", { file, note });
    }
  }

  _show(file) {
    const { zone, invitation, chosen, fileName, fileSize, limits, again } = this._parts;
    zone.classList.toggle("has-file", Boolean(file));
    invitation.hidden = Boolean(file);
    chosen.hidden = !file;
    limits.hidden = Boolean(file);
    again.hidden = !file;
    fileName.textContent = file ? file.name : "";
    fileSize.textContent = file ? ` · ${formatBytes(file.size)}` : "";
  }
}

if (!customElements.get("csv-drop-zone")) customElements.define("csv-drop-zone", CsvDropZone);
