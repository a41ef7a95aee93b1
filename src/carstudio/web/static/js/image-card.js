// <image-card>: one generated car image with its prompt, model, timing and a download link.
//
//   card.result = apiResponse          -> data-state="ready"
//   card.showLoading({aspectRatio, spec}) -> data-state="loading"
//   card.showError(message)            -> data-state="error"
//   card.clear()                       -> data-state="empty"
//
// `result` is the JSON answer of POST /api/car-image; an optional `spec` (the car as asked
// for) makes the alt text richer. Everything shown is set with textContent.

import { el, icon } from "./dom.js";

const BACKGROUND_WORDS = { white: "in a white studio", hub: "in a delivery hub showroom" };
const RATIOS = new Set(["1:1", "16:9", "9:16", "4:3", "3:4"]);

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

function formatSeconds(ms) {
  const seconds = Math.max(0, Number(ms) || 0) / 1000;
  if (seconds < 0.1) return `${seconds.toFixed(2)} s`;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}

function fileExtension(name, url) {
  const match = /\.([a-z0-9]{2,4})$/i.exec(name || "") || /\.([a-z0-9]{2,4})(?:\?|#|$)/i.exec(url || "");
  return match ? match[1].toUpperCase().replace("JPEG", "JPG") : "";
}

const ICON_IMAGE = [
  "M4 6.5A2.5 2.5 0 0 1 6.5 4h11A2.5 2.5 0 0 1 20 6.5v11a2.5 2.5 0 0 1-2.5 2.5h-11A2.5 2.5 0 0 1 4 17.5z",
  "M4 16l4.5-4.5a1.5 1.5 0 0 1 2.1 0L16 17",
  "M14 14.5l1.4-1.4a1.5 1.5 0 0 1 2.1 0L20 15.6",
  "M15.5 8.5h.01",
];
const ICON_ALERT = ["M12 3.5l9 16H3z", "M12 10v4.5", "M12 17.2v.01"];
const ICON_DOWNLOAD = ["M12 4v11", "M7.5 10.5L12 15l4.5-4.5", "M5 19.5h14"];

export class ImageCard extends HTMLElement {
  constructor() {
    super();
    this._result = null;
    this._built = false;
    this._timer = null;
  }

  connectedCallback() {
    if (!this._built) this._build();
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
    if (name === "aspect-ratio" && this._built && this.state !== "ready") {
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
    this.setAttribute("aspect-ratio", RATIOS.has(value) ? value : "1:1");
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
    if (this._built) this._render();
  }

  _build() {
    this._built = true;
    this.classList.add("image-card");
    this.setAttribute("role", "region");
    this.setAttribute("aria-label", "Generated image");

    const frame = el("div", "ic-frame");
    this._frame = frame;

    const img = el("img", "ic-img");
    img.dataset.part = "image";
    img.decoding = "async";
    img.hidden = true;
    img.addEventListener("load", () => {
      this.dataset.image = "loaded";
    });
    img.addEventListener("error", () => {
      if (!img.getAttribute("src")) return;
      this.dataset.image = "broken";
      this._brokenNote.hidden = false;
    });
    this._img = img;

    const empty = el("div", "ic-overlay ic-empty");
    empty.append(
      icon(ICON_IMAGE, "ic-icon ic-icon--large"),
      el("p", "ic-overlay__title", "Your image will appear here"),
      el("p", "ic-overlay__text", "Describe a car and press Generate."),
    );
    this._empty = empty;

    const loading = el("div", "ic-overlay ic-loading");
    const spinner = el("span", "spinner spinner--large");
    spinner.setAttribute("aria-hidden", "true");
    this._loadingTitle = el("p", "ic-overlay__title", "Generating…");
    this._loadingText = el("p", "ic-overlay__text", "");
    this._loadingClock = el("p", "ic-overlay__clock", "");
    loading.append(spinner, this._loadingTitle, this._loadingText, this._loadingClock);
    this._loading = loading;

    const error = el("div", "ic-overlay ic-error");
    this._errorText = el("p", "ic-overlay__text", "");
    this._errorText.dataset.part = "error";
    error.append(
      icon(ICON_ALERT, "ic-icon ic-icon--large"),
      el("p", "ic-overlay__title", "No image this time"),
      this._errorText,
    );
    this._error = error;

    this._brokenNote = el(
      "p",
      "ic-broken",
      "The image could not be displayed; the download link may still work.",
    );
    this._brokenNote.hidden = true;

    frame.append(img, empty, loading, error, this._brokenNote);

    const body = el("div", "ic-body");
    const meta = el("div", "ic-meta");
    this._model = el("span", "ic-chip ic-model");
    this._model.dataset.part = "model";
    this._provider = el("span", "ic-chip ic-chip--warn ic-provider", "Preview placeholder");
    this._time = el("span", "ic-time");
    this._time.dataset.part = "time";
    this._size = el("span", "ic-size");
    meta.append(this._model, this._provider, this._time, this._size);

    const prompt = el("details", "ic-prompt");
    const summary = el("summary", "ic-prompt__summary", "Prompt");
    this._promptText = el("p", "ic-prompt__text");
    this._promptText.dataset.part = "prompt";
    prompt.append(summary, this._promptText);
    this._prompt = prompt;

    const actions = el("div", "ic-actions");
    const download = el("a", "button button--secondary ic-download");
    download.dataset.part = "download";
    download.append(icon(ICON_DOWNLOAD, "ic-icon"));
    this._downloadLabel = el("span", "", "Download");
    download.append(this._downloadLabel);
    this._download = download;
    actions.append(download);

    body.append(meta, prompt, actions);
    this._body = body;

    // Announced once per change, so a screen reader hears the outcome of Generate.
    this._live = el("p", "visually-hidden");
    this._live.setAttribute("aria-live", "polite");

    this.replaceChildren(frame, body, this._live);
  }

  _setFrameRatio(value) {
    const [w, h] = ratioParts(value);
    this._frame.style.setProperty("--ar-w", String(w));
    this._frame.style.setProperty("--ar-h", String(h));
    this._frame.dataset.ratio = `${w}:${h}`;
  }

  _render() {
    const state = this.state;
    this._empty.hidden = state !== "empty";
    this._loading.hidden = state !== "loading";
    this._error.hidden = state !== "error";
    this._body.hidden = state !== "ready";
    this._img.hidden = state !== "ready";
    this.setAttribute("aria-busy", state === "loading" ? "true" : "false");
    if (state !== "loading") this._stopTimer();

    if (state === "ready") {
      this._renderResult(this._result);
    } else {
      this._setFrameRatio(this.aspectRatio);
      this._brokenNote.hidden = true;
      this._img.removeAttribute("src");
      this._img.alt = "";
      delete this.dataset.image;
    }

    if (state === "loading") {
      const description = describeCar(this._pendingSpec || {});
      this._loadingText.textContent = description
        ? `Making a photo of the ${description}.`
        : "Making your photo.";
      this._startTimer();
      this._live.textContent = "Generating the image…";
    } else if (state === "error") {
      this._errorText.textContent = this._errorMessage;
      this._live.textContent = "";
    } else if (state === "empty") {
      this._live.textContent = "";
    }
  }

  _renderResult(result) {
    this._setFrameRatio(result.aspectRatio || this.aspectRatio);
    const description = describeCar(result.spec || {});
    const where = BACKGROUND_WORDS[result.spec?.background] || "";
    const named = description || (result.title ? String(result.title) : "");
    const alt = named ? `${named}${where ? ` ${where}` : ""}` : "Generated car image";

    this._brokenNote.hidden = true;
    this.dataset.image = "loading";
    this._img.alt = alt;
    if (result.width && result.height) {
      this._img.width = result.width;
      this._img.height = result.height;
    } else {
      this._img.removeAttribute("width");
      this._img.removeAttribute("height");
    }
    this._img.src = result.imageUrl || "";

    const modelName = result.model || "";
    this._model.textContent = modelName;
    // The preview provider names itself as the model; its own chip already says so.
    this._model.hidden = !modelName || modelName === result.provider;
    this._provider.hidden = result.provider !== "preview";
    this._time.textContent =
      result.elapsedMs != null ? `Generated in ${formatSeconds(result.elapsedMs)}` : "";
    this._size.textContent =
      result.width && result.height ? `${result.width} × ${result.height}` : "";
    this._size.hidden = !this._size.textContent;

    this._promptText.textContent = result.prompt || "";
    this._prompt.hidden = !result.prompt;
    this._prompt.open = false;

    const fileName = result.fileName || "";
    this._download.href = result.imageUrl || "#";
    if (fileName) this._download.setAttribute("download", fileName);
    else this._download.setAttribute("download", "");
    const ext = fileExtension(fileName, result.imageUrl);
    this._downloadLabel.textContent = ext ? `Download ${ext}` : "Download";
    this._download.title = fileName || "Download the image";

    this._live.textContent = named ? `Image ready: ${named}.` : "Image ready.";
  }

  _startTimer() {
    this._stopTimer();
    const started = performance.now();
    const tick = () => {
      const seconds = Math.floor((performance.now() - started) / 1000);
      this._loadingClock.textContent = seconds >= 1 ? `${seconds} s` : "";
    };
    tick();
    this._timer = setInterval(tick, 500);
  }

  _stopTimer() {
    if (this._timer) clearInterval(this._timer);
    this._timer = null;
    if (this._loadingClock) this._loadingClock.textContent = "";
  }
}

if (!customElements.get("image-card")) customElements.define("image-card", ImageCard);
