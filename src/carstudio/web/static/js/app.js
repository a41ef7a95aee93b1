// The Car Creation page: tabs, and the wiring between the car form and the image card.

import "./image-card.js";
import "./car-form.js";
import "./batch-tab.js";
import "./month-spend.js";

/**
 * ARIA tabs with automatic activation: arrow keys, Home and End move between tabs and show
 * their panels. The chosen tab is kept in the address (#single, #batch) so it survives reload;
 * `hashFor(name)` may add to it (the Batch tab adds its batch id: #batch/<id>).
 */
export function setUpTabs(tablist, { hashFor = (name) => name } = {}) {
  const tabs = Array.from(tablist.querySelectorAll('[role="tab"]'));
  if (!tabs.length) return null;
  const panelOf = (tab) => document.getElementById(tab.getAttribute("aria-controls"));

  function select(tab, { focus = false, remember = true } = {}) {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      other.tabIndex = selected ? 0 : -1;
      const panel = panelOf(other);
      if (panel) panel.hidden = !selected;
    }
    if (focus) tab.focus();
    if (remember && tab.dataset.tab) {
      history.replaceState(null, "", `#${hashFor(tab.dataset.tab)}`);
    }
    document.dispatchEvent(new CustomEvent("tab-change", { detail: { tab: tab.dataset.tab } }));
  }

  tablist.addEventListener("click", (event) => {
    const tab = event.target.closest('[role="tab"]');
    if (tab && tabs.includes(tab)) select(tab);
  });

  tablist.addEventListener("keydown", (event) => {
    const index = tabs.indexOf(document.activeElement);
    if (index < 0) return;
    let next = null;
    switch (event.key) {
      case "ArrowRight":
      case "ArrowDown":
        next = tabs[(index + 1) % tabs.length];
        break;
      case "ArrowLeft":
      case "ArrowUp":
        next = tabs[(index - 1 + tabs.length) % tabs.length];
        break;
      case "Home":
        next = tabs[0];
        break;
      case "End":
        next = tabs[tabs.length - 1];
        break;
      default:
        return;
    }
    event.preventDefault();
    select(next, { focus: true });
  });

  // "#batch/<id>" names the Batch tab too.
  const tabInHash = () => tabs.find((tab) => tab.dataset.tab === location.hash.slice(1).split("/")[0]);
  const fromHash = tabInHash();
  if (fromHash) select(fromHash, { remember: false });
  window.addEventListener("hashchange", () => {
    const tab = tabInHash();
    if (tab && tab.getAttribute("aria-selected") !== "true") select(tab, { remember: false });
  });

  return { select: (name) => select(tabs.find((tab) => tab.dataset.tab === name) || tabs[0]) };
}

/** Show what the form does in the image card. */
function connectFormToCard(carForm, card) {
  const ratioSelect = carForm.querySelector('[name="aspect_ratio"]');
  if (ratioSelect) {
    // Before the first image, the empty card previews the chosen shape.
    const follow = () => {
      if (card.state === "empty" || card.state === "error") card.aspectRatio = ratioSelect.value;
    };
    ratioSelect.addEventListener("change", follow);
    follow();
  }

  carForm.addEventListener("generation-start", (event) => {
    const { spec } = event.detail;
    card.showLoading({ aspectRatio: spec.aspect_ratio, spec });
  });
  carForm.addEventListener("generation-done", (event) => {
    const { spec, result } = event.detail;
    card.result = { aspectRatio: spec.aspect_ratio, ...result, spec };
  });
  carForm.addEventListener("generation-failed", (event) => {
    card.showError(event.detail.error.message);
  });
}

function start() {
  const batch = document.querySelector("batch-tab");
  const tablist = document.querySelector('[role="tablist"]');
  const hashFor = (name) => (name === "batch" && batch ? batch.hash : name);
  if (tablist) setUpTabs(tablist, { hashFor });

  const carForm = document.querySelector("car-form");
  const card = document.querySelector("#result-card");
  if (carForm && card) connectFormToCard(carForm, card);
  document.documentElement.dataset.ready = "true";
}

start();
