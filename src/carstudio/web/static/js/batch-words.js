// A batch's status (the answer of GET /api/batch/{id}) in the words <batch-progress> shows
// and announces; <recent-batches> badges each batch it lists in the same words; and, before
// it starts, its estimate in the words <batch-start> shows beside Start Batch.

import { durationInWords, formatUsd, localTime, plural, timeLeftInWords } from "./format.js";
import { modelLabel } from "./image-models.js";

const MILESTONES = [25, 50, 75];

/**
 * What made a batch's images: "Imagen 3", or "Preview placeholders", as the preview draws
 * those whatever model was asked for. A summary from GET /api/batches names no provider; its
 * model is then the preview's own, "preview".
 */
export function madeBy(status) {
  if (status.provider === "preview" || status.model === "preview") return "Preview placeholders";
  return status.model ? modelLabel(status.model) : "";
}

/** "cars.csv · Batch 1a2b3c4d · Imagen 3 · started 14:05" */
export function subtitle(status) {
  const parts = [];
  if (status.source) parts.push(status.source);
  if (status.jobId) parts.push(`Batch ${String(status.jobId).slice(0, 8)}`);
  const model = madeBy(status);
  if (model) parts.push(model);
  // A batch opened from Recent batches may be days old, so its date is named unless today.
  if (status.createdAt) parts.push(`started ${localTime(status.createdAt)}`);
  return parts.join(" · ");
}

/** The badge beside the title, and its tone: ["Finished, 1 failed", "warn"]. */
export function badge(status) {
  if (status.state === "archiving") return ["Packing the ZIP", "run"];
  if (status.state !== "ready") return ["In progress", "run"];
  if (status.stopReason) return ["Stopped", "bad"];
  if (Number(status.canceled)) return ["Cancelled", "warn"];
  if (Number(status.failed)) return [`Finished, ${status.failed} failed`, "warn"];
  return ["Finished", "ok"];
}

/** The last statistic, named and valued: ["Time left", "About 40 seconds"]. */
export function timing(status) {
  if (status.state === "archiving") return ["Time left", "Packing the ZIP…"];
  if (status.state !== "ready") return ["Time left", timeLeftInWords(status.etaSeconds)];
  const took =
    status.finishedAt && status.createdAt ? Number(status.finishedAt) - Number(status.createdAt) : null;
  return ["Time taken", took != null ? durationInWords(took) : "–"];
}

/**
 * What to announce after a new status, or "": the start, each quarter passed (remembered in
 * `milestones`), and the end. Anything more would drown a screen reader.
 */
export function announcement(previous, status, milestones) {
  const total = Number(status.total) || 0;
  const done = Number(status.done) || 0;
  const failed = Number(status.failed) || 0;
  const finished = done + failed;
  if (status.state === "ready") {
    if (previous && previous.state === "ready") return "";
    const zip = status.zipUrl ? " The ZIP is ready to download." : "";
    return `Batch finished: ${plural(done, "image")} made, ${failed} failed.${zip}`;
  }
  if (!previous) return `Batch in progress: ${finished} of ${plural(total, "car")} finished.`;
  const reached = MILESTONES.filter((mark) => status.percent >= mark && !milestones.has(mark));
  for (const mark of MILESTONES) if (status.percent >= mark) milestones.add(mark);
  if (!reached.length) return "";
  return `Batch ${reached[reached.length - 1]}% done: ${finished} of ${total} finished.`;
}

/** The note on a batch whose rows moved off a model Replicate no longer has, or "". */
export function modelNote(status) {
  if (!status.replacedModel) return "";
  const made = status.state === "ready" ? "were made" : "are being made";
  return `${modelLabel(status.replacedModel)} is no longer available at Replicate; the remaining rows ${made} with ${modelLabel(status.model)}.`;
}

/** The model a batch stopped by a retired model can move to, or "" when none is offered. */
export function modelToSwitchTo(status) {
  const stopped = status && status.state === "ready" && status.stopKind === "model_unavailable";
  return stopped && status.switchTo ? String(status.switchTo) : "";
}

/**
 * The validate answer's `estimate` in words: "50 images · about $2.00 with Imagen 4",
 * "50 images · 12 already made · about $1.52 with Imagen 4", "3 images · price unknown for
 * Imagen 3", "3 images · free (preview)". `carstudio batch --dry-run` prints the same.
 */
export function estimateInWords(estimate) {
  const parts = [plural(Number(estimate.images) || 0, "image")];
  const cached = Number(estimate.cachedImages) || 0;
  if (cached) parts.push(`${cached} already made`);
  const label = modelLabel(estimate.model);
  if (estimate.model === "preview") parts.push("free (preview)");
  else if (estimate.total == null) parts.push(`price unknown for ${label}`);
  else parts.push(`${Number(estimate.total) ? "about " : ""}${formatUsd(estimate.total)} with ${label}`);
  return parts.join(" · ");
}
