// Small DOM helpers shared by the screens. Every element is built with the DOM API, so
// text from the server is never parsed as markup, and nothing needs an inline script or
// style attribute (the page's Content-Security-Policy forbids both).

let ids = 0;

/** A fresh element id. */
export function uid(prefix = "f") {
  ids += 1;
  return `${prefix}-${ids}`;
}

/**
 * `h("button", {class: "primary", onclick: fn}, "Save")`: an element. Attributes whose
 * name starts with `on` become listeners; `true` sets a boolean attribute, `false` and
 * null leave it out; children may be strings, nodes, arrays or null.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/**
 * A labelled form field: `input` gets an id, the label points at it, and an error line
 * below it is announced and tied to it with `aria-describedby`.
 */
export function field(label, input, hint) {
  const id = input.id || uid();
  input.id = id;
  const error = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const described = [error.id];
  let hintEl = null;
  if (hint) {
    hintEl = h("p", { class: "hint", id: `${id}-hint` }, hint);
    described.unshift(hintEl.id);
  }
  input.setAttribute("aria-describedby", described.join(" "));
  const isCheck = input.type === "checkbox";
  return h(
    "div",
    { class: isCheck ? "field check" : "field" },
    isCheck ? [input, h("label", { for: id }, label)] : [h("label", { for: id }, label), input],
    hintEl,
    error,
  );
}

/** Clears the errors a form shows. */
export function clearErrors(form) {
  for (const p of form.querySelectorAll(".field-error, .form-error")) {
    p.hidden = true;
    p.textContent = "";
  }
  for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
}

/**
 * Shows an API error on a form: next to the field the problem names when the form has
 * it, at the top of the form otherwise. Focuses the field (or the message).
 */
export function showError(form, err) {
  clearErrors(form);
  const name = err?.field;
  const input = name ? form.querySelector(`[name="${CSS.escape(name)}"]`) : null;
  const message = err?.message || String(err);
  if (input) {
    const p = document.getElementById(`${input.id}-error`);
    if (p) {
      p.textContent = message;
      p.hidden = false;
    }
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  let box = form.querySelector(".form-error");
  if (!box) {
    box = h("p", { class: "form-error", role: "alert", tabindex: "-1" });
    form.prepend(box);
  }
  box.textContent = message;
  box.hidden = false;
  box.focus();
}

/**
 * Runs `action` for a form's submit: the submit button is disabled meanwhile, and an
 * error lands next to its field.
 */
export function onSubmit(form, action) {
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const buttons = form.querySelectorAll("button[type=submit]");
    buttons.forEach((b) => (b.disabled = true));
    clearErrors(form);
    try {
      await action(new FormData(form));
    } catch (err) {
      showError(form, err);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  });
  return form;
}

/**
 * A modal dialog (`<dialog>`: the page behind is inert, Tab stays inside, Escape closes).
 * Resolves with what `close(value)` was given, or null when dismissed.
 */
export function dialog(title, body, { actions = [], onOpen } = {}) {
  return new Promise((resolve) => {
    const titleId = uid("dlg");
    let result = null;
    const close = (value) => {
      result = value;
      dlg.close();
    };
    const dlg = h(
      "dialog",
      { "aria-labelledby": titleId },
      h("h2", { id: titleId }, title),
      typeof body === "function" ? body(close) : body,
      actions.length ? h("div", { class: "actions" }, actions.map((a) => a(close))) : null,
    );
    dlg.addEventListener("close", () => {
      dlg.remove();
      resolve(result);
    });
    document.body.append(dlg);
    dlg.showModal();
    if (onOpen) onOpen(dlg);
  });
}

/** Asks before something that can't be undone; resolves true when confirmed. */
export async function confirm(title, text, verb = "Delete") {
  const answer = await dialog(title, h("p", {}, text), {
    actions: [
      (close) => h("button", { type: "button", onclick: () => close(false) }, "Cancel"),
      (close) => h("button", { type: "button", class: "danger", onclick: () => close(true) }, verb),
    ],
  });
  return answer === true;
}

/** A short message in the corner, read out by screen readers. */
export function toast(text) {
  const box = document.getElementById("toast");
  box.textContent = text;
  box.classList.add("shown");
  clearTimeout(box.timer);
  box.timer = setTimeout(() => box.classList.remove("shown"), 3000);
}

/** Copies `text` and says so. */
export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast("Copied to the clipboard");
  } catch {
    toast("Copy failed: select the text and copy it yourself");
  }
}

/** Saves a Blob under `name`. */
export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** A date and time in the browser's time zone. */
export function when(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** A `<time>` of `iso`, shown in the browser's time zone. */
export function time(iso) {
  return iso ? h("time", { datetime: iso }, when(iso)) : "—";
}

/** The value of a `datetime-local` input as RFC 3339 UTC, or null when empty. */
export function fromLocalInput(value) {
  return value ? new Date(value).toISOString() : null;
}

/** An RFC 3339 time as a `datetime-local` input's value, in the browser's time zone. */
export function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A page heading that takes focus, so a screen reader announces the new screen. */
export function heading(text, ...extra) {
  return h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, text), extra);
}

/** A message for an empty list: what it is and what to do next. */
export function empty(text, action) {
  return h("div", { class: "empty" }, h("p", {}, text), action || null);
}

/** A failure to load a screen. */
export function failure(err) {
  return h("p", { class: "form-error", role: "alert" }, err?.message || String(err));
}

/** Goes to a screen (`go("/links")`); the same screen again is drawn afresh. */
export function go(path) {
  if (location.hash === `#${path}`) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = path;
}

/**
 * Fills `el` with the rows `row` draws for what `fetchItems` resolves to, or with
 * `emptyState` when there are none, or with the error when fetching fails.
 */
export async function loadRows(el, fetchItems, row, emptyState) {
  try {
    const items = await fetchItems();
    fill(el, items.length ? h("ul", { class: "rows" }, items.map(row)) : emptyState);
  } catch (e) {
    fill(el, failure(e));
  }
}

/** Runs an action of a button; a failure is told in a notice. */
export async function attempt(action) {
  try {
    await action();
  } catch (e) {
    toast(e.message);
  }
}
