// <image-card>: one generated car image with its prompt, model, timing and a download link.
//
//   card.result = apiResponse          -> data-state="ready"
//   card.showLoading({aspectRatio, spec}) -> data-state="loading"
//   card.showError(message)            -> data-state="error"
//   card.clear()                       -> data-state="empty"
//
//   attribute: aspect-ratio  the shape shown before there is an image, e.g. "16:9"
//
// `result` is the JSON answer of POST /api/car-image; an optional `spec` (the car as asked
// for) makes the alt text richer. Its `checks` show as a chip ("Checked", or "Check" with the
// sentences of the checks that failed or warned), and a re-roll is said. Its markup is the page's <template id="image-card-template">;
// everything shown is set with textContent.

import { cloneTemplate, partsOf } from "./dom.js";
import { formatSeconds } from "./format.js";

const BACKGROUND_WORDS = { white: "in a white studio", hub: "in a delivery hub showroom" };

/** "Red 2024 Toyota Corolla XSE sedan" from whatever parts of a car spec are filled in. */
export function describeCar(spec = {}) {
  const clean = (value) => (value == null ? "" : String(value).trim());
  const parts = [
    clean(spec.color),
    clean(spec.year),
    clean(spec.make),
    clean(spec.model),
    clean(spec.trim),
    clean(spec.body_style ?? spec.bodyStyle),
  ].filter(Boolean);
  if (!parts.length) return "";
  const text = parts.join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** "16:9" -> [16, 9]; anything unexpected -> [1, 1]. */
function ratioParts(value) {
  const match = /^\s*(\d+(?:\.\d+)?)\s*[:/x]\s*(\d+(?:\.\d+)?)\s*$/.exec(String(value || ""));
  if (!match) return [1, 1];
  const w = Number(match[1]);
  const h = Number(match[2]);
  return w > 0 && h > 0 ? [w, h] : [1, 1];
}

function fileExtension(name, url) {
  const match = /\.([a-z0-9]{2,4})$/i.exec(name || "") || /\.([a-z0-9]{2,4})(?:\?|#|$)/i.exec(url || "");
  return match ? match[1].toUpperCase().replace("JPEG", "JPG") : "";
}

export class ImageCard extends HTMLElement {
  constructor() {
    super();
    this._result = null;
    this._parts = null;
    this._timer = null;
  }

  connectedCallback() {
    if (!this._parts) this._build();
    if (!this.dataset.state) this.dataset.state = "empty";
    this._render();
  }

  disconnectedCallback() {
    this._stopTimer();
  }

  static get observedAttributes() {
    return ["aspect-ratio"];
  }

  attributeChangedCallback(name) {
    if (name === "aspect-ratio" && this._parts && this.state !== "ready") {
      this._setFrameRatio(this.getAttribute("aspect-ratio"));
    }
  }

  /** "empty" | "loading" | "ready" | "error" */
  get state() {
    return this.dataset.state || "empty";
  }

  /** The shape shown before there is an image, e.g. "16:9". */
  get aspectRatio() {
    return this.getAttribute("aspect-ratio") || "1:1";
  }

  set aspectRatio(value) {
    this.setAttribute("aspect-ratio", ratioParts(value).join(":"));
  }

  get result() {
    return this._result;
  }

  /** Show a generated image: the JSON answer of POST /api/car-image (plus optional `spec`). */
  set result(value) {
    if (!value) {
      this.clear();
      return;
    }
    this._result = { ...value };
    this._setState("ready");
  }

  /** Waiting for an image of the given shape and car. */
  showLoading({ aspectRatio, spec } = {}) {
    if (aspectRatio) this.aspectRatio = aspectRatio;
    this._pendingSpec = spec || null;
    this._setState("loading");
  }

  /** No image this time; `message` says why, in words. */
  showError(message) {
    this._errorMessage = String(message || "The image could not be made.");
    this._setState("error");
  }

  /** Back to the empty state. */
  clear() {
    this._result = null;
    this._setState("empty");
  }

  _setState(state) {
    this.dataset.state = state;
    if (this._parts) this._render();
  }

  _build() {
    const content = cloneTemplate("image-card-template");
    this._parts = partsOf(content);
    this.replaceChildren(content);
    this.classList.add("image-card");
    this.setAttribute("role", "region");
    this.setAttribute("aria-label", "Generated image");

    const { image, broken } = this._parts;
    image.addEventListener("load", () => {
      this.dataset.image = "loaded";
    });
    image.addEventListener("error", () => {
      if (!image.getAttribute("src")) return;
      this.dataset.image = "broken";
      broken.hidden = false;
    });
  }

  _setFrameRatio(value) {
    const [w, h] = ratioParts(value);
    const { frame } = this._parts;
    frame.style.setProperty("--ar-w", String(w));
    frame.style.setProperty("--ar-h", String(h));
    frame.dataset.ratio = `${w}:${h}`;
  }

  _render() {
    const state = this.state;
    const p = this._parts;
    p.empty.hidden = state !== "empty";
    p.loading.hidden = state !== "loading";
    p.failure.hidden = state !== "error";
    p.body.hidden = state !== "ready";
    p.image.hidden = state !== "ready";
    this.setAttribute("aria-busy", state === "loading" ? "true" : "false");
    if (state !== "loading") this._stopTimer();

    if (state === "ready") {
      this._renderResult(this._result);
    } else {
      this._setFrameRatio(this.aspectRatio);
      p.broken.hidden = true;
      p.image.removeAttribute("src");
      p.image.alt = "";
      delete this.dataset.image;
    }

    if (state === "loading") {
      const description = describeCar(this._pendingSpec || {});
      p.loadingText.textContent = description
        ? `Making a photo of the ${description}.`
        : "Making your photo.";
      this._startTimer();
      p.live.textContent = "Generating the image…";
    } else if (state === "error") {
      p.error.textContent = this._errorMessage;
      p.live.textContent = "";
    } else if (state === "empty") {
      p.live.textContent = "";
    }
  }

  _renderResult(result) {
    const p = this._parts;
    this._setFrameRatio(result.aspectRatio || this.aspectRatio);
    const description = describeCar(result.spec || {});
    const where = BACKGROUND_WORDS[result.spec?.background] || "";
    const named = description || (result.title ? String(result.title) : "");
    const alt = named ? `${named}${where ? ` ${where}` : ""}` : "Generated car image";

    p.broken.hidden = true;
    this.dataset.image = "loading";
    p.image.alt = alt;
    if (result.width && result.height) {
      p.image.width = result.width;
      p.image.height = result.height;
    } else {
      p.image.removeAttribute("width");
      p.image.removeAttribute("height");
    }
    p.image.src = result.imageUrl || "";

    const modelName = result.model || "";
    p.model.textContent = modelName;
    // The preview provider names itself as the model; its own chip already says so.
    p.model.hidden = !modelName || modelName === result.provider;
    p.provider.hidden = result.provider !== "preview";
    // Reused from the image cache: an identical image made before, at no cost.
    p.cached.hidden = !result.cached;
    this._showChecks(result);
    p.time.textContent =
      result.elapsedMs != null ? `Generated in ${formatSeconds(result.elapsedMs / 1000)}` : "";
    p.size.textContent = result.width && result.height ? `${result.width} × ${result.height}` : "";
    p.size.hidden = !p.size.textContent;

    p.prompt.textContent = result.prompt || "";
    p.promptBox.hidden = !result.prompt;
    p.promptBox.open = false;

    const fileName = result.fileName || "";
    p.download.href = result.imageUrl || "#";
    p.download.setAttribute("download", fileName);
    const ext = fileExtension(fileName, result.imageUrl);
    p.downloadLabel.textContent = ext ? `Download ${ext}` : "Download";
    p.download.title = fileName || "Download the image";

    p.live.textContent = named ? `Image ready: ${named}.` : "Image ready.";
  }

  _showChecks(result) {
    const p = this._parts;
    const checks = result.checks;
    p.check.hidden = !checks;
    p.checkText.hidden = !(checks && result.needsReview);
    if (!checks) return;
    p.check.dataset.verdict = checks.verdict;
    const again = result.rerolls > 0 ? " · made again" : "";
    p.check.textContent = (result.needsReview ? "Check" : "Checked") + again;
    p.check.title = checks.sentence;
    p.checkText.textContent = result.needsReview ? checks.sentence : "";
  }

  _startTimer() {
    this._stopTimer();
    const started = performance.now();
    const tick = () => {
      const seconds = Math.floor((performance.now() - started) / 1000);
      this._parts.clock.textContent = seconds >= 1 ? `${seconds} s` : "";
    };
    tick();
    this._timer = setInterval(tick, 500);
  }

  _stopTimer() {
    if (this._timer) clearInterval(this._timer);
    this._timer = null;
    if (this._parts) this._parts.clock.textContent = "";
  }
}

if (!customElements.get("image-card")) customElements.define("image-card", ImageCard);
