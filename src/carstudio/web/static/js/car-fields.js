// The car fields as the server names them, rendered into the page once
// (<template id="car-fields">), so no script keeps its own list of fields or labels.

let fields = null;

/** Every car field in display order: [{name, label, default}]. */
export function carFields() {
  if (!fields) {
    const template = document.getElementById("car-fields");
    const nodes = template ? template.content.querySelectorAll("data") : [];
    fields = Array.from(nodes, (node) => ({
      name: node.value,
      label: node.textContent.trim(),
      default: node.dataset.default || "",
    }));
  }
  return fields;
}

/** Whether `name` is a car field ("year": yes; "notes": no). */
export function isCarField(name) {
  return carFields().some((field) => field.name === name);
}

/** "Year" for "year"; anything else is shown as it came. */
export function fieldLabel(name) {
  const field = carFields().find((each) => each.name === name);
  return field ? field.label : String(name);
}

/** "Row 3, Year: message" from a server detail {row?, column?, message}. */
export function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  if (!detail || typeof detail !== "object") return "";
  const message = String(detail.message ?? detail.msg ?? "").trim();
  if (!message) return "";
  const where = [];
  if (detail.row != null) where.push(`Row ${detail.row}`);
  const column = detail.column ?? detail.field;
  if (column) where.push(fieldLabel(column));
  // The sentence may already name its row; do not say it twice.
  if (where.length && !message.startsWith(where[0])) return `${where.join(", ")}: ${message}`;
  return message;
}
