// Administration (admins only; the API refuses anyone else): domains, the blocklist,
// abuse reports and blocking links.

import * as api from "./api.js";
import { h, fill, field, onSubmit, heading, empty, confirm, time, loadRows, attempt } from "./ui.js";

export async function adminScreen(root) {
  const sections = [domainsSection(), blocklistSection(), reportsSection(), moderationSection()];
  await Promise.all(sections.map((s) => s.load()));
  fill(root, heading("Administration"), sections.map((s) => s.element));
}

function section(title, id, ...children) {
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), children);
}

function domainsSection() {
  const list = h("div");
  // The default domain is always there: the list is never empty.
  const load = () =>
    loadRows(
      list,
      async () => (await api.json("GET", "/api/v1/domains")).items,
      (d) =>
        h(
          "li",
          { class: "row" },
          h("strong", {}, d.host),
          h("span", { class: "row-meta" }, d.is_default ? "Default domain" : ["Added ", time(d.created_at)]),
          d.is_default ? null : h("button", { type: "button", class: "small danger", onclick: () => remove(d) }, "Remove"),
        ),
      null,
    );
  async function remove(d) {
    if (!(await confirm(`Remove ${d.host}?`, "Its links stop answering on it.", "Remove"))) return;
    await attempt(async () => {
      await api.request("DELETE", `/api/v1/domains/${encodeURIComponent(d.host)}`);
      await load();
    });
  }
  const form = onSubmit(
    h(
      "form",
      { class: "inline-form", novalidate: true },
      field("Host", h("input", { name: "host", required: true, maxlength: 253, placeholder: "go.example.com" })),
      field("Root redirect (optional)", h("input", { name: "root_redirect", type: "url" })),
      field("Not-found redirect (optional)", h("input", { name: "not_found_redirect", type: "url" })),
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Add domain")),
    ),
    async (data) => {
      const body = { host: data.get("host").trim() };
      for (const k of ["root_redirect", "not_found_redirect"]) if (data.get(k).trim()) body[k] = data.get(k).trim();
      await api.json("POST", "/api/v1/domains", { body });
      form.reset();
      await load();
    },
  );
  return { element: section("Domains", "dom-h", list, form), load };
}

function blocklistSection() {
  const list = h("div");
  const load = () =>
    loadRows(
      list,
      async () => (await api.json("GET", "/api/v1/admin/blocklist")).items,
      (b) =>
        h(
          "li",
          { class: "row" },
          h("strong", { class: "mono" }, b.pattern),
          h("span", { class: "row-meta" }, b.reason || ""),
          h("button", { type: "button", class: "small danger", onclick: () => remove(b) }, "Remove"),
        ),
      empty("No blocked hosts. New links to a blocked host are refused."),
    );
  const remove = (b) =>
    attempt(async () => {
      await api.request("DELETE", `/api/v1/admin/blocklist/${b.id}`);
      await load();
    });
  const form = onSubmit(
    h(
      "form",
      { class: "inline-form", novalidate: true },
      field("Host pattern", h("input", { name: "pattern", required: true, placeholder: "*.bad.example" })),
      field("Reason (optional)", h("input", { name: "reason", maxlength: 200 })),
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Block host")),
    ),
    async (data) => {
      const body = { pattern: data.get("pattern").trim() };
      if (data.get("reason").trim()) body.reason = data.get("reason").trim();
      await api.json("POST", "/api/v1/admin/blocklist", { body });
      form.reset();
      await load();
    },
  );
  return { element: section("Blocklist", "bl-h", list, form), load };
}

function reportsSection() {
  const list = h("div");
  const load = () =>
    loadRows(
      list,
      async () => (await api.json("GET", api.withQuery("/api/v1/admin/reports", { status: "open", limit: 50 }))).items,
      (r) =>
        h(
          "li",
          { class: "row" },
          h("div", {}, h("strong", {}, r.reason), " · ", r.link?.short_url || "", r.details ? h("p", { class: "hint" }, r.details) : null),
          h("span", { class: "row-meta" }, time(r.created_at)),
          h(
            "div",
            { class: "actions" },
            h("button", { type: "button", class: "small", onclick: () => close(r, "resolved") }, "Resolve"),
            h("button", { type: "button", class: "small", onclick: () => close(r, "dismissed") }, "Dismiss"),
          ),
        ),
      empty("No open reports."),
    );
  const close = (r, status) =>
    attempt(async () => {
      await api.json("PATCH", `/api/v1/admin/reports/${r.id}`, { body: { status } });
      await load();
    });
  return { element: section("Open reports", "rep-h", list), load };
}

function moderationSection() {
  const list = h("div");
  let q = "";
  const load = () =>
    loadRows(
      list,
      async () => (await api.json("GET", api.withQuery("/api/v1/admin/links", { q, limit: 20 }))).items,
      (l) =>
        h(
          "li",
          { class: "row" },
          h("div", {}, h("strong", {}, l.short_url), h("p", { class: "hint dest" }, l.original_url)),
          h("span", { class: `badge ${l.blocked ? "blocked" : "active"}` }, l.blocked ? "Blocked" : "Live"),
          h("button", { type: "button", class: "small", onclick: () => moderate(l) }, l.blocked ? "Unblock" : "Block"),
        ),
      empty(q ? "No link matches." : "No links yet."),
    );
  async function moderate(l) {
    if (!l.blocked && !(await confirm(`Block ${l.short_url}?`, "Visitors get 410 Gone and its owner can't unblock it.", "Block"))) return;
    await attempt(async () => {
      await api.json("PATCH", `/api/v1/admin/links/${l.id}`, { body: { blocked: !l.blocked } });
      await load();
    });
  }
  const form = onSubmit(
    h(
      "form",
      { class: "inline-form", role: "search" },
      field("Search all links", h("input", { name: "q", type: "search" })),
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Search")),
    ),
    async (data) => {
      q = data.get("q").trim();
      await load();
    },
  );
  return { element: section("All links", "mod-h", form, list), load };
}
