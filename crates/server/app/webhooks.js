// Webhooks: create (the signing secret is shown once), enable or disable, delete, and
// each one's recent deliveries.

import * as api from "./api.js";
import { h, fill, field, onSubmit, heading, empty, failure, confirm, toast, time, loadRows, attempt } from "./ui.js";
import { showSecret } from "./keys.js";

const EVENTS = ["link.created", "link.updated", "link.deleted", "link.clicked"];

export async function webhooksScreen(root) {
  const list = h("div", { class: "list" });

  const load = () =>
    loadRows(
      list,
      async () => (await api.json("GET", "/api/v1/webhooks")).items,
      row,
      empty("No webhooks yet. A webhook posts a signed JSON message to your URL when your links change or are clicked."),
    );

  function row(w) {
    return h(
      "li",
      { class: "row" },
      h("div", {}, h("a", { href: `#/webhooks/${w.id}`, class: "mono" }, w.url), w.description ? h("p", { class: "hint" }, w.description) : null),
      h("div", { class: "row-meta" }, h("span", { class: `badge ${w.enabled ? "active" : "disabled"}` }, w.enabled ? "Enabled" : "Disabled"), " ", w.events.join(", ")),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "small", onclick: () => toggle(w) }, w.enabled ? "Disable" : "Enable"),
        h("button", { type: "button", class: "small danger", onclick: () => remove(w) }, "Delete"),
      ),
    );
  }

  const toggle = (w) =>
    attempt(async () => {
      await api.json("PATCH", `/api/v1/webhooks/${w.id}`, { body: { enabled: !w.enabled } });
      await load();
    });

  async function remove(w) {
    if (!(await confirm("Delete this webhook?", `${w.url} hears nothing more.`))) return;
    await attempt(async () => {
      await api.request("DELETE", `/api/v1/webhooks/${w.id}`);
      toast("Webhook deleted");
      await load();
    });
  }

  const url = h("input", { name: "url", type: "url", required: true, maxlength: 2048, placeholder: "https://example.com/hooks/hoplink" });
  const description = h("input", { name: "description", maxlength: 200 });
  const boxes = EVENTS.map((e) => field(e, h("input", { type: "checkbox", name: "events", value: e, checked: true })));
  const form = onSubmit(
    h(
      "form",
      { class: "card", novalidate: true },
      h("h2", {}, "New webhook"),
      field("Receiver URL", url),
      field("Description (optional)", description),
      h("fieldset", { class: "events" }, h("legend", {}, "Events"), boxes),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create webhook")),
    ),
    async (data) => {
      const body = { url: data.get("url").trim(), events: data.getAll("events") };
      if (data.get("description").trim()) body.description = data.get("description").trim();
      const created = await api.json("POST", "/api/v1/webhooks", { body });
      form.reset();
      await load();
      await showSecret("Webhook signing secret", created.secret, "Your receiver checks each message's signature with this secret. It is shown only once.");
    },
  );

  await load();
  fill(root, heading("Webhooks"), list, form);
}

export async function webhookDetail(root, { id }) {
  let deliveries;
  try {
    deliveries = (await api.json("GET", `/api/v1/webhooks/${encodeURIComponent(id)}/deliveries`)).items;
  } catch (e) {
    fill(root, heading("Webhook"), failure(e.status === 404 || e.status === 422 ? { message: "There is no webhook of yours at this address." } : e));
    return;
  }
  fill(
    root,
    heading("Deliveries", h("a", { class: "button", href: "#/webhooks" }, "All webhooks")),
    deliveries.length
      ? h(
          "div",
          { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Deliveries" },
          h(
            "table",
            {},
            h("caption", { class: "visually-hidden" }, "Recent delivery attempts, newest first"),
            h("thead", {}, h("tr", {}, ["Time", "Event", "Attempt", "Status", "Error"].map((c) => h("th", { scope: "col" }, c)))),
            h(
              "tbody",
              {},
              deliveries.map((d) =>
                h("tr", {}, h("td", {}, time(d.at)), h("td", {}, d.event), h("td", {}, String(d.attempt)), h("td", {}, d.status_code ? String(d.status_code) : "—"), h("td", {}, d.error || "")),
              ),
            ),
          ),
        )
      : empty("Nothing delivered yet. Deliveries show here once an event happens."),
  );
}
