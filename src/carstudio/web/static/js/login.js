// The sign-in page. A shared batch link (/#batch/<id>) reaches it with the batch's address
// after the "#", which a browser never sends: kept in the form, it brings the person back to
// that batch once signed in. The server names the addresses it follows, and follows no other.
const field = document.querySelector('[data-part="return-to"]');
if (field && !field.value) {
  const allowed = new RegExp(`^(?:${field.dataset.allowed})$`);
  if (allowed.test(location.hash)) field.value = location.hash;
}
