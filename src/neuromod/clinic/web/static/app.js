// neuromod clinic: the small script every page loads. Sends changes to the clinic API with the
// session cookie and the CSRF token (from <meta name="csrf-token">); shows the API's one-line
// error (it names the field and the allowed range) next to the form.

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

/** Call the API; resolves to the parsed JSON answer or throws an Error carrying its `detail`. */
export async function api(method, url, body) {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let answer = null;
  try { answer = text ? JSON.parse(text) : null; } catch { answer = { detail: text }; }
  if (!response.ok) {
    const error = new Error((answer && answer.detail) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return answer;
}

/** Put `value` at a dotted path ("baseline.glabella.rest", "adverse_events.0.kind"). */
function assign(target, path, value) {
  const keys = path.split(".");
  let node = target;
  keys.forEach((key, i) => {
    const last = i === keys.length - 1;
    const nextIsIndex = !last && /^\d+$/.test(keys[i + 1]);
    if (last) node[key] = value;
    else node = node[key] ?? (node[key] = nextIsIndex ? [] : {});
  });
}

/** A form's fields as a JSON document: blank fields left out, numbers as numbers, and the
 * form's data-json merged in (fixed parts such as a plan's injections). */
export function formDocument(form) {
  const document_ = form.dataset.json ? JSON.parse(form.dataset.json) : {};
  for (const field of form.elements) {
    if (!field.name || field.disabled || field.value === "") continue;
    if ((field.type === "checkbox" || field.type === "radio") && !field.checked) continue;
    let value = field.value;
    if (field.type === "number" || field.dataset.type === "int") value = Number(value);
    if (field.type === "checkbox") value = true;
    assign(document_, field.name, value);
  }
  return document_;
}

function wireApiForm(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = form.querySelector(".form-error");
    const button = form.querySelector('button[type="submit"]');
    if (error) error.textContent = "";
    if (button) button.disabled = true;
    try {
      const answer = await api(form.dataset.method || "POST", form.dataset.api, formDocument(form));
      const next = form.dataset.next;
      if (next) window.location.assign(next.replace("{id}", answer && answer.id));
      else window.location.reload();
    } catch (failure) {
      if (error) error.textContent = failure.message;
      if (button) button.disabled = false;
    }
  });
}

function wireSignIn(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = form.querySelector(".form-error");
    error.textContent = "";
    try {
      await api("POST", "/api/auth/sign-in", formDocument(form));
      window.location.assign(form.dataset.next || "/patients");
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form.api-form").forEach(wireApiForm);
  const signIn = document.getElementById("sign-in-form");
  if (signIn) wireSignIn(signIn);
  const signOut = document.getElementById("sign-out");
  if (signOut) signOut.addEventListener("click", async () => {
    try { await api("POST", "/api/auth/sign-out"); } finally { window.location.assign("/sign-in"); }
  });
});

// -- photo upload: scaled down in the browser (the upload stays small), re-encoded on the server
const PHOTO_UPLOAD_SIDE = 2048; // the server's stored size (clinic/web/photos.py STORED_SIDE)

async function scaledJpeg(file) {
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  const scale = Math.min(1, PHOTO_UPLOAD_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.88));
}

function wirePhotoForm(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = form.querySelector(".form-error");
    error.textContent = "";
    const file = form.elements.file.files[0];
    if (!file) { error.textContent = "file: choose a photo"; return; }
    const [field, id] = form.elements.attach.value.split(":");
    const body = new FormData();
    try {
      body.append("file", await scaledJpeg(file), "photo.jpg");
    } catch {
      error.textContent = "file: the browser cannot read this image; allowed: JPEG, PNG, WebP";
      return;
    }
    body.append("view", form.elements.view.value);
    body.append(field, id);
    const response = await fetch(form.dataset.api, { method: "POST", body, credentials: "same-origin",
                                                      headers: { "X-CSRF-Token": csrfToken() } });
    if (response.ok) { window.location.reload(); return; }
    const answer = await response.json().catch(() => ({}));
    error.textContent = answer.detail || `${response.status} ${response.statusText}`;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const photoForm = document.getElementById("photo-form");
  if (photoForm) wirePhotoForm(photoForm);
});
