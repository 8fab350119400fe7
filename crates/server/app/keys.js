// API keys: create one (its secret is shown once, with a copy button), list, revoke.

import * as api from "./api.js";
import { h, fill, field, onSubmit, heading, empty, copy, confirm, dialog, toast, time, loadRows, attempt } from "./ui.js";

export async function keysScreen(root) {
  const list = h("div", { class: "list" });

  const load = () =>
    loadRows(
      list,
      async () => (await api.json("GET", "/api/v1/api-keys")).items,
      (k) =>
        h(
          "li",
          { class: "row" },
          h("div", {}, h("strong", {}, k.name || "Unnamed key"), h("span", { class: "mono hint" }, ` ${k.prefix}…`)),
          h("div", { class: "row-meta" }, "Created ", time(k.created_at)),
          h("button", { type: "button", class: "small danger", onclick: () => revoke(k) }, "Revoke"),
        ),
      empty("No API keys yet. A key lets a program use the API as you: name it after the program."),
    );

  async function revoke(k) {
    if (!(await confirm("Revoke this key?", `“${k.name || k.prefix}” stops working at once.`, "Revoke"))) return;
    await attempt(async () => {
      await api.request("DELETE", `/api/v1/api-keys/${k.id}`);
      toast("Key revoked");
      await load();
    });
  }

  const name = h("input", { name: "name", maxlength: 100, required: true, placeholder: "Deploy script" });
  const form = onSubmit(
    h("form", { class: "card inline-form", novalidate: true }, field("Name", name), h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create key"))),
    async (data) => {
      const created = await api.json("POST", "/api/v1/api-keys", { body: { name: data.get("name").trim() } });
      form.reset();
      await load();
      await showSecret("Your new API key", created.key, "Copy it now: it is shown only once. Send it as the X-API-Key header.");
    },
  );

  await load();
  fill(root, heading("API keys"), form, list);
}

/** Shows a secret once, with a copy button. */
export function showSecret(title, secret, text) {
  const box = h("input", { readonly: true, value: secret, class: "mono secret", id: "secret-value", "aria-label": "Secret" });
  return dialog(title, h("div", {}, h("p", {}, text), box), {
    actions: [
      () => h("button", { type: "button", class: "primary", id: "copy-secret", onclick: () => copy(secret) }, "Copy"),
      (close) => h("button", { type: "button", onclick: () => close(true) }, "Done"),
    ],
    onOpen: () => box.select(),
  });
}
