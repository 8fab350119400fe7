// The link list, and the form that creates and edits a link with every option the API
// has. A link's own page (analytics, QR, clicks) is in detail.js.

import * as api from "./api.js";
import { h, fill, field, onSubmit, heading, empty, failure, copy, go, toast, time, fromLocalInput, toLocalInput, uid } from "./ui.js";
import { rulesEditor } from "./rules.js";

// The list's filters outlive a visit to a link's page.
const filters = { q: "", tag: "", domain: "", sort: "newest" };

/** The domains of the deployment (the default first), or just the default on failure. */
export async function domains() {
  try {
    return (await api.json("GET", "/api/v1/domains")).items;
  } catch {
    return [];
  }
}

/** What state a link is in, for people: active, disabled, expired, blocked or used up. */
export function status(link) {
  if (link.blocked) return ["blocked", "Blocked"];
  if (!link.is_active) return ["disabled", "Disabled"];
  if (link.expires_at && new Date(link.expires_at) <= new Date()) return ["expired", "Expired"];
  if (link.max_clicks !== null && link.max_clicks !== undefined && link.click_count >= link.max_clicks) {
    return ["used-up", "Used up"];
  }
  return ["active", "Active"];
}

export function statusBadge(link) {
  const [cls, text] = status(link);
  return h("span", { class: `badge ${cls}` }, text);
}

export async function linkList(root) {
  const known = await domains();
  const list = h("div", { class: "list" });
  const more = h("div", { class: "more" });
  let items = [];
  let cursor = null;

  const q = h("input", { name: "q", type: "search", value: filters.q, placeholder: "Code, URL or title" });
  const tag = h("input", { name: "tag", value: filters.tag, placeholder: "any" });
  const sort = h(
    "select",
    { name: "sort" },
    h("option", { value: "newest", selected: filters.sort === "newest" }, "Newest first"),
    h("option", { value: "clicks", selected: filters.sort === "clicks" }, "Most clicks"),
  );
  const domain =
    known.length > 1
      ? h(
          "select",
          { name: "domain" },
          h("option", { value: "" }, "All domains"),
          known.map((d) => h("option", { value: d.host, selected: filters.domain === d.host }, d.host)),
        )
      : null;
  const form = h(
    "form",
    { class: "filters", role: "search" },
    field("Search", q),
    field("Tag", tag),
    domain ? field("Domain", domain) : null,
    field("Sort", sort),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Filter")),
  );

  function render() {
    if (!items.length) {
      const filtered = filters.q || filters.tag || filters.domain;
      fill(
        list,
        filtered
          ? empty("No link matches these filters.", h("button", { type: "button", onclick: reset }, "Clear filters"))
          : empty("You have no links yet. Shorten your first URL to see it here.", h("a", { class: "button primary", href: "#/links/new" }, "Create a link")),
      );
    } else {
      fill(list, h("ul", { class: "links" }, items.map(row)));
    }
    fill(more, cursor ? h("button", { type: "button", onclick: load }, "Load more") : null);
  }

  async function load() {
    try {
      const page = await api.json(
        "GET",
        api.withQuery("/api/v1/urls", { limit: 50, cursor, q: filters.q, tag: filters.tag, domain: filters.domain, sort: filters.sort }),
      );
      items = items.concat(page.items);
      cursor = page.next_cursor || null;
      render();
    } catch (e) {
      fill(list, failure(e));
    }
  }

  function reset() {
    Object.assign(filters, { q: "", tag: "", domain: "" });
    go("/links");
  }

  onSubmit(form, async (data) => {
    filters.q = data.get("q").trim();
    filters.tag = data.get("tag").trim();
    filters.domain = data.get("domain") || "";
    filters.sort = data.get("sort");
    items = [];
    cursor = null;
    await load();
  });
  sort.addEventListener("change", () => form.requestSubmit());

  await load();
  fill(root, heading("Links", h("a", { class: "button primary", href: "#/links/new" }, "New link")), form, list, more);
}

function row(link) {
  return h(
    "li",
    { class: "link" },
    h(
      "div",
      { class: "link-main" },
      h("a", { class: "code", href: `#/links/${encodeURIComponent(link.id)}` }, link.title || link.short_code),
      h("span", { class: "short" }, link.short_url),
      h("span", { class: "dest", title: link.original_url }, link.original_url),
      link.tags.length ? h("span", { class: "tags" }, link.tags.map((t) => h("span", { class: "tag" }, t))) : null,
    ),
    h(
      "div",
      { class: "link-meta" },
      statusBadge(link),
      h("span", { class: "clicks" }, `${link.click_count} ${link.click_count === 1 ? "click" : "clicks"}`),
      time(link.created_at),
      h("button", { type: "button", class: "small", onclick: () => copy(link.short_url), "aria-label": `Copy ${link.short_url}` }, "Copy"),
    ),
  );
}

export async function linkNew(root) {
  const known = await domains();
  const form = linkForm(null, known, async (body) => {
    const link = await api.json("POST", "/api/v1/urls", { body });
    toast(`Created ${link.short_url}`);
    go(`/links/${link.id}`);
  });
  fill(root, heading("New link"), form);
}

/**
 * The form of a link: empty for a new one (`link` null), filled in for an edit. `save`
 * gets the request body: a create leaves out what is empty, an edit sends every field.
 */
export function linkForm(link, known, save) {
  const editing = Boolean(link);
  const v = link || { tags: [], redirect_type: 302, forward_query: false, redirect_rules: [], is_active: true };
  const url = h("input", { name: "original_url", type: "url", required: true, maxlength: 2048, value: v.original_url || "", placeholder: "https://example.com/page" });
  const alias = editing
    ? null
    : h("input", { name: "custom_alias", pattern: "[A-Za-z0-9_\\-]{3,64}", minlength: 3, maxlength: 64, autocomplete: "off", spellcheck: "false" });
  const domain =
    !editing && known.length > 1
      ? h("select", { name: "domain" }, known.map((d) => h("option", { value: d.is_default ? "" : d.host }, d.host)))
      : null;
  const title = h("input", { name: "title", maxlength: 255, value: v.title || "" });
  const tags = h("input", { name: "tags", value: v.tags.join(", "), autocomplete: "off" });
  const expires = h("input", { name: "expires_at", type: "datetime-local", value: toLocalInput(v.expires_at) });
  const maxClicks = h("input", { name: "max_clicks", type: "number", min: 1, step: 1, inputmode: "numeric", value: v.max_clicks ?? "" });
  const redirectType = h(
    "select",
    { name: "redirect_type" },
    [
      [302, "302 Found (temporary, default)"],
      [301, "301 Moved Permanently"],
      [307, "307 Temporary Redirect"],
      [308, "308 Permanent Redirect"],
    ].map(([code, text]) => h("option", { value: code, selected: v.redirect_type === code }, text)),
  );
  const forward = h("input", { name: "forward_query", type: "checkbox", checked: v.forward_query });
  const active = editing ? h("input", { name: "is_active", type: "checkbox", checked: v.is_active }) : null;
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password", maxlength: 128 });
  const removePassword = editing && v.password_protected ? h("input", { name: "remove_password", type: "checkbox" }) : null;
  const rules = rulesEditor(v.redirect_rules || []);

  const advancedId = uid("adv");
  const form = h(
    "form",
    { class: "card link-form", novalidate: true },
    field("Destination URL", url),
    alias ? field("Custom alias (optional)", alias, "3–64 letters, digits, - or _. Leave empty for a generated code.") : null,
    domain ? field("Domain", domain) : null,
    field("Title (optional)", title),
    field("Tags (optional)", tags, "Separated by commas."),
    active ? field("Active (visitors are redirected)", active) : null,
    h(
      "details",
      { class: "advanced", id: advancedId, open: editing && (v.expires_at || v.max_clicks || v.forward_query || v.password_protected || v.redirect_rules?.length || v.redirect_type !== 302) ? true : null },
      h("summary", {}, "More options: expiry, click limit, redirect type, password, rules"),
      h(
        "div",
        { class: "grid" },
        field("Expires at (optional)", expires, "In your time zone. After it, visitors get 410 Gone."),
        field("Click limit (optional)", maxClicks, "The link stops after this many human clicks."),
        field("Redirect type", redirectType),
      ),
      field("Forward the query string to the destination", forward),
      field(editing && v.password_protected ? "New password (optional)" : "Password (optional)", password, "Visitors must enter it before they are redirected."),
      removePassword ? field("Remove the password", removePassword) : null,
      rules.element,
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary" }, editing ? "Save changes" : "Create link"),
      editing ? null : h("a", { class: "button", href: "#/links" }, "Cancel"),
    ),
  );

  return onSubmit(form, async (data) => {
    const tagList = data
      .get("tags")
      .split(",")
      .map((t) => t.trim())
      .filter(Boolean);
    const body = {
      original_url: data.get("original_url").trim(),
      title: data.get("title").trim() || null,
      tags: tagList,
      expires_at: fromLocalInput(data.get("expires_at")),
      max_clicks: data.get("max_clicks") ? Number(data.get("max_clicks")) : null,
      redirect_type: Number(data.get("redirect_type")),
      forward_query: forward.checked,
      redirect_rules: rules.value(),
    };
    if (editing) {
      body.is_active = active.checked;
      if (data.get("password")) body.password = data.get("password");
      else if (removePassword?.checked) body.password = null;
    } else {
      if (data.get("custom_alias")) body.custom_alias = data.get("custom_alias").trim();
      if (data.get("domain")) body.domain = data.get("domain");
      if (data.get("password")) body.password = data.get("password");
      for (const k of Object.keys(body)) {
        if (body[k] === null || (Array.isArray(body[k]) && !body[k].length)) delete body[k];
      }
    }
    try {
      await save(body);
    } catch (e) {
      // A problem in a hidden option: open the options so the message can be seen.
      if (e.field && form.querySelector(`#${advancedId} [name="${e.field}"]`)) form.querySelector(`#${advancedId}`).open = true;
      if (e.field?.startsWith("redirect_rules")) form.querySelector(`#${advancedId}`).open = true;
      throw e;
    }
  });
}
