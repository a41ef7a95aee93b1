// Talking to Car Studio's JSON API. Every failure becomes an ApiError whose message is a
// sentence a person can act on, with the server's per-field `details` kept alongside.

export class ApiError extends Error {
  /**
   * @param {string} message  the sentence to show
   * @param {{status?: number, details?: Array<object>, body?: unknown}} [extra]
   */
  constructor(message, { status = 0, details = [], body = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.details = Array.isArray(details) ? details : [];
    this.body = body;
  }
}

const GENERIC_BY_STATUS = {
  400: "Car Studio could not use that request.",
  404: "Car Studio could not find that.",
  413: "That file is too large.",
  422: "Car Studio could not use those details.",
  429: "Car Studio is busy right now; wait a moment and try again.",
  502: "The image service did not answer properly; try again in a moment.",
  503: "Car Studio is not ready yet; try again in a moment.",
  504: "The image service took too long to answer; try again.",
};

/** A readable sentence for a status the server did not explain. */
function fallbackMessage(status) {
  if (GENERIC_BY_STATUS[status]) return GENERIC_BY_STATUS[status];
  if (status >= 500) return `Something went wrong on the server (HTTP ${status}); try again.`;
  return `The request failed (HTTP ${status}).`;
}

/**
 * Send a request and return the decoded JSON body; throw ApiError on any failure.
 * @param {string} url
 * @param {RequestInit & {json?: unknown}} [options]  `json` is sent as the JSON body
 */
export async function request(url, options = {}) {
  return (await send(url, options)).body;
}

/**
 * GET a JSON resource that may be unchanged since the answer tagged `etag`: the server then
 * answers 304 with no body, and this returns `{changed: false, etag}`; otherwise
 * `{changed: true, body, etag}`. The caller keeps the last body. The browser's own cache is
 * left out (`no-store`), so the 304 reaches this code instead of being replaced.
 * @param {string} url
 * @param {string} etag  the last answer's ETag, or ""
 * @param {RequestInit} [options]
 */
export async function getIfChanged(url, etag, options = {}) {
  const headers = etag ? { ...options.headers, "If-None-Match": etag } : options.headers;
  const { response, body } = await send(url, {
    ...options,
    method: "GET",
    cache: "no-store",
    headers,
  });
  if (response.status === 304) return { changed: false, etag };
  return { changed: true, body, etag: response.headers.get("ETag") || "" };
}

/** Send a request; the response and its decoded JSON body, or an ApiError thrown. */
async function send(url, options) {
  const { json, headers, ...rest } = options;
  const init = { ...rest, headers: { Accept: "application/json", ...headers } };
  if (json !== undefined) {
    init.method = init.method || "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }

  let response;
  try {
    response = await fetch(url, init);
  } catch (cause) {
    if (cause && cause.name === "AbortError") throw cause;
    throw new ApiError(
      "Car Studio could not be reached. Check your connection and try again.",
      { status: 0 },
    );
  }

  let body = null;
  const text = await response.text();
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }

  if (response.status === 304) return { response, body: null };
  if (!response.ok) {
    const message =
      body && typeof body.error === "string" && body.error.trim()
        ? body.error.trim()
        : fallbackMessage(response.status);
    throw new ApiError(message, {
      status: response.status,
      details: body && Array.isArray(body.details) ? body.details : [],
      body,
    });
  }
  if (body === null && text) {
    throw new ApiError("The server sent an answer Car Studio could not read.", {
      status: response.status,
    });
  }
  return { response, body };
}

/** GET a JSON resource. */
export function getJSON(url, options = {}) {
  return request(url, { ...options, method: "GET" });
}

/** POST a JSON body and return the JSON answer. */
export function postJSON(url, json, options = {}) {
  return request(url, { ...options, method: "POST", json });
}

/**
 * Ask for one car image; `image_model` (a name from the models table) picks the model, else
 * the server's own.
 * @param {{make: string, model: string, body_style: string, trim: string,
 *          year: number|null, color: string, background: string, aspect_ratio: string,
 *          image_model?: string}} spec
 * @returns {Promise<{id: string, imageUrl: string, prompt: string, model: string,
 *          elapsedMs: number, provider?: string, width?: number, height?: number,
 *          aspectRatio?: string, fileName?: string}>}
 */
export function createCarImage(spec, options = {}) {
  return postJSON("/api/car-image", spec, options);
}
