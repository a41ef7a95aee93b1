// The image models this server offers, rendered into the page once
// (<template id="image-models">) from the same table as the model selects, so no script
// keeps its own list of models, labels or prices.

let models = null;

/**
 * Every model in the table's order: [{name, label, retiring, price}]; `price` is the server's
 * words for one image from it ("$0.04 per image", "price unknown").
 */
export function imageModels() {
  if (!models) {
    const template = document.getElementById("image-models");
    const nodes = template ? template.content.querySelectorAll("data") : [];
    models = Array.from(nodes, (node) => ({
      name: node.value,
      label: node.textContent.trim(),
      retiring: node.hasAttribute("data-retiring"),
      price: node.dataset.price || "",
    }));
  }
  return models;
}

/** "Nano Banana 2" for "google/nano-banana-2"; a name the page does not know is shown as it came. */
export function modelLabel(name) {
  const model = imageModels().find((each) => each.name === name);
  return model ? model.label : String(name ?? "");
}

/** "Imagen 4 · $0.04 per image", as the Single tab shows it beside Generate; "" if unknown. */
export function modelPrice(name) {
  const model = imageModels().find((each) => each.name === name);
  return model ? `${model.label} · ${model.price}` : "";
}
