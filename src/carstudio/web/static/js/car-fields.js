// The field registry as the server declares it (spec.CarSpec), passed to the page once as JSON
// (<script type="application/json" id="car-registry">), so no script keeps its own list of
// fields, labels, roles or choices.

let fields = null;

/**
 * Every car field in display order: [{name, label, help, role, default, choices, prompt,
 * fileName, core, input, placeholder, suggestions, maxLength}].
 */
export function carFields() {
  if (!fields) {
    const node = document.getElementById("car-registry");
    try {
      fields = node ? JSON.parse(node.textContent) : [];
    } catch {
      fields = [];
    }
  }
  return fields;
}

/** The fields that identify a car on the lot, in the order they lead its file name (stock
 *  number, VIN); they never reach the prompt. */
export function identityFields() {
  return carFields()
    .filter((field) => field.role === "identifies")
    .sort((a, b) => Number(a.fileName) - Number(b.fileName));
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

/** The car field a name from the API means: "stockNumber" and "stock_number" are one. */
export function fieldName(name) {
  const snake = String(name).replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
  return isCarField(snake) ? snake : String(name);
}

/** "Stock number A17 · VIN 1FA…": how a row's identity fields are shown on its tile. */
export function identityWords(identity) {
  return identityFields()
    .filter((field) => identity && identity[field.name])
    .map((field) => `${field.label} ${identity[field.name]}`)
    .join(" · ");
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
