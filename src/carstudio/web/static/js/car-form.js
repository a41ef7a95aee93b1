// <car-form>: wraps the server-rendered car form. It checks the input, asks the API for an
// image, shows problems next to the fields they concern, and tells the page what happened:
//
//   "generation-start"  detail: {spec}
//   "generation-done"   detail: {spec, result}
//   "generation-failed" detail: {spec, error}
//
// The events bubble, so whoever shows the result (an <image-card>) only listens. `spec` is the
// car alone; the chosen image model travels beside it as `image_model`, and the price of one
// image from it is shown beside Generate (the server's words, from image-models.js). "Make new
// images" sends `fresh: true`; otherwise an identical image made before is reused at no cost.

import { ApiError, createCarImage } from "./api.js";
import { carFields, fieldName, isCarField } from "./car-fields.js";
import { fillAlert } from "./dom.js";
import { modelPrice } from "./image-models.js";

// Form fields that are not part of the car, but whose problems still belong beside them.
const REQUEST_FIELDS = ["image_model"];

/** Whether `name` is a field of this form: a car field or one of REQUEST_FIELDS. */
function isFormField(name) {
  return isCarField(name) || REQUEST_FIELDS.includes(name);
}

/** The form field a server detail points at, or null. Accepts "year", "body.year", ["body","year"]. */
function fieldOf(detail) {
  if (!detail || typeof detail !== "object") return null;
  let name = detail.field ?? detail.column ?? detail.loc ?? null;
  if (Array.isArray(name)) name = name[name.length - 1];
  if (name == null) return null;
  name = String(name).split(".").pop();
  name = fieldName(name);
  return isFormField(name) ? name : null;
}

function messageOf(detail) {
  let text = "";
  if (typeof detail === "string") text = detail;
  else if (detail && typeof detail.message === "string") text = detail.message;
  else if (detail && typeof detail.msg === "string") text = detail.msg;
  text = text.trim();
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : "";
}

export class CarForm extends HTMLElement {
  connectedCallback() {
    if (this._form) return;
    this._form = this.querySelector("form");
    if (!this._form) return;
    this._button = this._form.querySelector('button[type="submit"]');
    this._buttonLabel = this._button.querySelector(".button__label");
    this._idleLabel = this._buttonLabel.textContent.trim();
    this._alert = this._form.querySelector('[role="alert"]');
    this._price = this._form.querySelector('[data-part="price"]');
    this._busy = false;

    this._form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    // An edited field is no longer wrong until the next check says so.
    this._form.addEventListener("input", (event) => this._clearFieldFor(event.target));
    this._form.addEventListener("change", (event) => {
      this._clearFieldFor(event.target);
      if (this._price && event.target.name === "image_model") {
        this._price.textContent = modelPrice(this.imageModel);
      }
    });
  }

  get form() {
    return this._form;
  }

  get busy() {
    return this._busy;
  }

  /** The car as the API expects it: trimmed strings, year as a number or null. */
  get spec() {
    const data = new FormData(this._form);
    const text = (name) => String(data.get(name) ?? "").trim();
    const spec = {};
    for (const field of carFields()) {
      const value = text(field.name);
      if (field.input === "number") spec[field.name] = /^\d+$/.test(value) ? Number(value) : null;
      else spec[field.name] = value;
    }
    return spec;
  }

  /** The image model chosen in the form, or "" for the server's own. */
  get imageModel() {
    const select = this._input("image_model");
    return select ? select.value : "";
  }

  /** The files delivered (an output preset), or "" for the server's own. */
  get output() {
    const select = this._input("output");
    return select ? select.value : "";
  }

  /** Whether "Make new images" is ticked: no image made before is reused. */
  get fresh() {
    const box = this._input("fresh");
    return Boolean(box && box.checked);
  }

  /** Check the form; return problems as [{field, message}] (empty when it can be sent). */
  validate() {
    const problems = [];
    const spec = this.spec;
    if (!spec.make && !spec.model) {
      problems.push({
        field: "make",
        message: "Enter a make or a model, for example Toyota or Corolla.",
        also: ["model"],
      });
    }
    const yearInput = this._input("year");
    const yearText = yearInput.value.trim();
    const badInput = yearInput.validity && yearInput.validity.badInput;
    if (badInput || (yearText && !/^\d{4}$/.test(yearText))) {
      problems.push({ field: "year", message: "Enter the year as four digits, like 2024." });
    } else if (yearText) {
      const min = Number(yearInput.min);
      const max = Number(yearInput.max);
      const year = Number(yearText);
      if (year < min || year > max) {
        problems.push({ field: "year", message: `Enter a year from ${min} to ${max}.` });
      }
    }
    return problems;
  }

  /** Validate, then ask for the image. Resolves to the API result, or null when it failed. */
  async submit() {
    if (this._busy) return null;
    this.clearErrors();
    const problems = this.validate();
    if (problems.length) {
      this._showProblems(problems, "");
      return null;
    }

    const spec = this.spec;
    let focused = false;
    this._setBusy(true);
    this._emit("generation-start", { spec });
    try {
      const body = { ...spec };
      if (this.imageModel) body.image_model = this.imageModel;
      if (this.fresh) body.fresh = true;
      if (this.output) body.output = this.output;
      const result = await createCarImage(body);
      this._emit("generation-done", { spec, result });
      return result;
    } catch (error) {
      const shown =
        error instanceof ApiError
          ? error
          : new ApiError("Something unexpected went wrong; try again.", { status: 0 });
      focused = this._showProblems(shown.details, shown.message);
      this._emit("generation-failed", { spec, error: shown });
      return null;
    } finally {
      this._setBusy(false);
      // The disabled button dropped focus; give it back so the keyboard user is not lost.
      const active = document.activeElement;
      if (!focused && (!active || active === document.body)) this._button.focus();
    }
  }

  /** Remove every error message and invalid mark. */
  clearErrors() {
    this._alert.replaceChildren();
    for (const { name } of carFields()) this._setFieldError(name, "");
    for (const name of REQUEST_FIELDS) this._setFieldError(name, "");
  }

  _input(name) {
    return this._form.elements.namedItem(name);
  }

  _errorNode(name) {
    return this._form.querySelector(`[data-error-for="${name}"]`);
  }

  _setFieldError(name, message, { describedBy } = {}) {
    const input = this._input(name);
    const node = this._errorNode(name);
    if (!input) return;
    // A field judged together with another points at that field's message instead of repeating it.
    if (node) node.textContent = describedBy ? "" : message;
    const errorId = describedBy || (node && node.id);
    const ids = (input.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
    const others = ids.filter((id) => !id.endsWith("-error"));
    if (message) {
      input.setAttribute("aria-invalid", "true");
      if (errorId) others.push(errorId);
    } else {
      input.removeAttribute("aria-invalid");
    }
    if (others.length) input.setAttribute("aria-describedby", others.join(" "));
    else input.removeAttribute("aria-describedby");
  }

  _clearFieldFor(target) {
    const name = target && target.name;
    if (!name || !isFormField(name)) return;
    if (!target.hasAttribute("aria-invalid")) return;
    // Make and model are judged together: either one being filled fixes both.
    const group = name === "make" || name === "model" ? ["make", "model"] : [name];
    for (const field of group) this._setFieldError(field, "");
  }

  /**
   * Show field problems beside their fields and a summary sentence in the alert.
   * @param {Array<object|string>} details
   * @param {string} sentence  the overall message; empty for client-side checks
   */
  _showProblems(details, sentence) {
    const unplaced = [];
    let first = null;
    for (const detail of details || []) {
      const field = fieldOf(detail);
      const message = messageOf(detail);
      if (field && message) {
        this._setFieldError(field, message);
        for (const other of detail.also || []) {
          this._setFieldError(other, message, { describedBy: this._errorNode(field)?.id });
        }
        first = first || field;
      } else if (message) {
        unplaced.push(message);
      }
    }

    const marked = this._form.querySelectorAll('[aria-invalid="true"]').length;
    const fallback =
      marked > 1 ? "Check the highlighted fields before generating." : "Check the highlighted field before generating.";
    const summary = sentence || (first ? fallback : "");
    fillAlert(this._alert, summary, unplaced);
    if (first) this._input(first).focus();
    return Boolean(first);
  }

  _setBusy(busy) {
    this._busy = busy;
    this._button.disabled = busy;
    this._button.setAttribute("aria-busy", busy ? "true" : "false");
    this._buttonLabel.textContent = busy ? "Generating…" : this._idleLabel;
    this._form.setAttribute("aria-busy", busy ? "true" : "false");
    this.toggleAttribute("busy", busy);
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true }));
  }
}

if (!customElements.get("car-form")) customElements.define("car-form", CarForm);
