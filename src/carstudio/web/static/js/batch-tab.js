// The Batch tab: a CSV goes into <csv-upload>; once started, <batch-progress> follows the
// batch. The batch's id lives in the address (#batch/<id>), so a reload or a shared link
// shows the same batch again. `?poll=<ms>` sets how often progress is polled.

import "./csv-upload.js";
import "./batch-progress.js";

const JOB_HASH = /^#batch\/([0-9a-f]{32})$/i;

/** The batch id in an address hash like "#batch/<id>", or null. */
export function jobFromHash(hash = location.hash) {
  const match = JOB_HASH.exec(hash || "");
  return match ? match[1].toLowerCase() : null;
}

/**
 * Wire the Batch tab inside `root`. Returns {hash()} giving the hash the Batch tab should
 * carry right now (with the batch id when one is shown).
 */
export function setUpBatchTab(root) {
  const intake = root.querySelector("#batch-intake");
  const upload = root.querySelector("csv-upload");
  const progress = root.querySelector("batch-progress");
  if (!intake || !upload || !progress) return null;

  const poll = Number(new URLSearchParams(location.search).get("poll"));
  if (Number.isFinite(poll) && poll > 0) progress.setAttribute("poll-interval", String(poll));

  let jobId = null;
  const hash = () => (jobId ? `batch/${jobId}` : "batch");
  const remember = () => history.replaceState(null, "", `#${hash()}`);

  function showBatch(id, { focus = false } = {}) {
    jobId = id;
    intake.hidden = true;
    progress.hidden = false;
    progress.jobId = id;
    if (focus) progress.focusTitle();
  }

  function showIntake({ focus = false } = {}) {
    jobId = null;
    progress.jobId = "";
    progress.hidden = true;
    intake.hidden = false;
    upload.reset();
    if (focus) upload.querySelector('[data-part="zone"]')?.focus();
  }

  upload.addEventListener("batch-submitted", (event) => {
    showBatch(event.detail.jobId, { focus: true });
    remember();
  });
  progress.addEventListener("batch-new", () => {
    showIntake({ focus: true });
    remember();
  });
  window.addEventListener("hashchange", () => {
    const id = jobFromHash();
    if (id && id !== jobId) showBatch(id);
    else if (!id && location.hash === "#batch" && jobId) showIntake();
  });

  const initial = jobFromHash();
  if (initial) showBatch(initial);
  return { hash };
}
