// A link's own page: what it is, edit / disable / delete, its QR code, its analytics
// and its raw clicks.

import * as api from "./api.js";
import { h, fill, heading, failure, copy, go, toast, confirm, download, time, empty, attempt } from "./ui.js";
import { linkForm, domains, statusBadge } from "./links.js";
import { dayChart, breakdown } from "./chart.js";

const WINDOWS = [7, 30, 90, 365];
// Each refresh is two API requests, which count against the user's rate limit.
const REFRESH_MS = 10000;

export async function linkDetail(root, { id }) {
  let link;
  try {
    link = await api.json("GET", `/api/v1/urls/${encodeURIComponent(id)}`);
  } catch (e) {
    if (e.status === 404 || e.status === 422) {
      fill(root, heading("Link not found"), empty("There is no link of yours at this address.", h("a", { class: "button", href: "#/links" }, "Back to your links")));
      return;
    }
    fill(root, heading("Link"), failure(e));
    return;
  }
  const known = await domains();
  const summary = h("section", { class: "card", "aria-labelledby": "about-h" });
  const editBox = h("section", { class: "card", hidden: true, "aria-labelledby": "edit-h" });
  const stats = analyticsSection(link);

  function drawSummary() {
    fill(
      summary,
      h("h2", { id: "about-h", class: "visually-hidden" }, "About this link"),
      h(
        "div",
        { class: "short-line" },
        h("a", { class: "short big", href: link.short_url, target: "_blank", rel: "noopener" }, link.short_url),
        h("button", { type: "button", class: "small", id: "copy-short", onclick: () => copy(link.short_url) }, "Copy"),
        statusBadge(link),
      ),
      h(
        "dl",
        { class: "facts" },
        fact("Goes to", h("span", { class: "dest-full" }, link.original_url)),
        fact("Created", time(link.created_at)),
        fact("Clicks", h("span", { id: "link-clicks" }, clickText(link))),
        link.expires_at ? fact("Expires", time(link.expires_at)) : null,
        link.tags.length ? fact("Tags", link.tags.join(", ")) : null,
        fact("Redirect", String(link.redirect_type)),
        link.password_protected ? fact("Password", "Required") : null,
        link.redirect_rules.length ? fact("Rules", `${link.redirect_rules.length}`) : null,
        link.blocked ? fact("Blocked", link.blocked_reason || "By an administrator") : null,
      ),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", id: "edit-link", onclick: openEdit }, "Edit"),
        h("button", { type: "button", onclick: toggleActive }, link.is_active ? "Disable" : "Enable"),
        h("button", { type: "button", class: "danger", id: "delete-link", onclick: remove }, "Delete"),
      ),
    );
  }

  function openEdit() {
    const form = linkForm(link, known, async (body) => {
      link = await api.json("PATCH", `/api/v1/urls/${link.id}`, { body });
      toast("Saved");
      editBox.hidden = true;
      drawSummary();
      summary.querySelector("#edit-link").focus();
    });
    fill(
      editBox,
      h("h2", { id: "edit-h" }, "Edit link"),
      form,
      h("button", { type: "button", class: "link-button", onclick: () => ((editBox.hidden = true), summary.querySelector("#edit-link").focus()) }, "Cancel editing"),
    );
    editBox.hidden = false;
    form.querySelector("input").focus();
  }

  const toggleActive = () =>
    attempt(async () => {
      link = await api.json("PATCH", `/api/v1/urls/${link.id}`, { body: { is_active: !link.is_active } });
      toast(link.is_active ? "Enabled" : "Disabled");
      drawSummary();
    });

  async function remove() {
    const sure = await confirm("Delete this link?", `${link.short_url} will answer 404 for good and its code can't be used again.`);
    if (!sure) return;
    await attempt(async () => {
      await api.request("DELETE", `/api/v1/urls/${link.id}`);
      toast("Link deleted");
      go("/links");
    });
  }

  drawSummary();
  await stats.load();
  fill(
    root,
    heading(link.title || link.short_code, h("a", { class: "button", href: "#/links" }, "All links")),
    summary,
    editBox,
    stats.element,
    qrSection(link),
    clicksSection(link),
  );
}

function clickText(link) {
  return String(link.click_count) + (link.max_clicks ? ` of ${link.max_clicks}` : "");
}

function fact(term, value) {
  return h("div", {}, h("dt", {}, term), h("dd", {}, value));
}

function analyticsSection(link) {
  let days = 30;
  let timer = 0;
  const body = h("div", { class: "analytics-body" });
  const picker = h(
    "div",
    { class: "segmented", role: "group", "aria-label": "Period" },
    WINDOWS.map((d) =>
      h(
        "button",
        {
          type: "button",
          "aria-pressed": d === days ? "true" : "false",
          onclick: async (e) => {
            days = d;
            for (const b of picker.querySelectorAll("button")) b.setAttribute("aria-pressed", b === e.currentTarget ? "true" : "false");
            await load();
          },
        },
        `${d} days`,
      ),
    ),
  );
  const refresh = h("button", { type: "button", class: "small", id: "refresh-analytics", onclick: () => load() }, "Refresh");
  const element = h(
    "section",
    { class: "card", "aria-labelledby": "an-h" },
    h("div", { class: "section-head" }, h("h2", { id: "an-h" }, "Analytics"), picker, refresh),
    body,
  );

  async function load() {
    clearTimeout(timer);
    try {
      const s = await api.json(
        "GET",
        api.withQuery(`/api/v1/analytics/${encodeURIComponent(link.short_code)}/summary`, { days, domain: link.domain }),
      );
      draw(s);
      // The link's own count moves too; only its text changes, so focus stays put.
      const fresh = await api.json("GET", `/api/v1/urls/${link.id}`);
      const count = document.getElementById("link-clicks");
      if (count) count.textContent = clickText(fresh);
    } catch (e) {
      fill(body, failure(e));
    }
    // Clicks show up within seconds: keep the numbers fresh while the page is open.
    timer = setTimeout(() => {
      if (!element.isConnected) return;
      if (document.visibilityState === "visible") load();
      else document.addEventListener("visibilitychange", () => element.isConnected && load(), { once: true });
    }, REFRESH_MS);
  }

  function draw(s) {
    fill(
      body,
      h(
        "div",
        { class: "tiles" },
        tile("Clicks", s.total_clicks, "total-clicks"),
        tile("Unique visitors", s.unique_visitors, "unique-visitors"),
        tile("Bot clicks", s.bot_clicks, "bot-clicks"),
      ),
      dayChart(s.clicks_by_day, `Clicks per day, last ${days} days`),
      h(
        "div",
        { class: "breakdowns" },
        breakdown("Top referrers", s.top_referrers),
        breakdown("Browsers", s.browsers),
        breakdown("Operating systems", s.operating_systems),
        breakdown("Devices", s.devices),
        breakdown("Countries", s.countries),
      ),
    );
  }

  return { element, load };
}

function tile(label, value, id) {
  return h("div", { class: "tile" }, h("span", { class: "tile-value", id }, String(value)), h("span", { class: "tile-label" }, label));
}

function qrSection(link) {
  const img = h("img", { alt: `QR code of ${link.short_url}`, width: 192, height: 192, class: "qr" });
  const path = (format, size) =>
    api.withQuery(`/api/v1/qr/${encodeURIComponent(link.short_code)}`, { format, size, domain: link.domain });
  api
    .blob(path("png", 384))
    .then((b) => (img.src = URL.createObjectURL(b)))
    .catch(() => (img.alt = "The QR code could not be made"));
  const save = (format) => () =>
    attempt(async () => download(await api.blob(path(format, 1024)), `${link.short_code}.${format}`));
  return h(
    "section",
    { class: "card qr-box", "aria-labelledby": "qr-h" },
    h("h2", { id: "qr-h" }, "QR code"),
    img,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: save("png") }, "Download PNG"),
      h("button", { type: "button", onclick: save("svg") }, "Download SVG"),
    ),
  );
}

function clicksSection(link) {
  // Focusable, so a keyboard can scroll a table wider than a phone.
  const table = h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Clicks" });
  const more = h("div", { class: "more" });
  let rows = [];
  let cursor = null;
  const base = `/api/v1/analytics/${encodeURIComponent(link.short_code)}/clicks`;

  async function load() {
    try {
      const page = await api.json("GET", api.withQuery(base, { limit: 50, cursor, domain: link.domain }));
      rows = rows.concat(page.items);
      cursor = page.next_cursor || null;
      draw();
    } catch (e) {
      fill(table, failure(e));
    }
  }

  function draw() {
    if (!rows.length) {
      fill(table, empty("No clicks yet. Share the short link; each visit shows here within seconds."));
    } else {
      fill(
        table,
        h(
          "table",
          {},
          h("caption", { class: "visually-hidden" }, "Clicks, newest first"),
          h("thead", {}, h("tr", {}, ["Time", "Referrer", "Browser", "OS", "Device", "Country", "Visitor", "Bot"].map((c) => h("th", { scope: "col" }, c)))),
          h(
            "tbody",
            {},
            rows.map((c) =>
              h("tr", {}, h("td", {}, time(c.at)), h("td", {}, c.referrer), h("td", {}, c.browser), h("td", {}, c.os), h("td", {}, c.device), h("td", {}, c.country), h("td", { class: "mono" }, c.visitor.slice(0, 8)), h("td", {}, c.bot ? "yes" : "no")),
            ),
          ),
        ),
      );
    }
    fill(more, cursor ? h("button", { type: "button", onclick: load }, "Load more") : null);
  }

  // Every page of the log, one file: the cursor of the next page is in a header.
  const csv = () =>
    attempt(async () => {
      let text = "";
      let next = null;
      for (let page = 0; page < 200; page += 1) {
        const res = await api.request("GET", api.withQuery(base, { limit: 1000, cursor: next, domain: link.domain, format: "csv" }));
        const chunk = await res.text();
        text += page === 0 ? chunk : chunk.slice(chunk.indexOf("\n") + 1);
        next = res.headers.get("x-next-cursor");
        if (!next) break;
      }
      download(new Blob([text], { type: "text/csv" }), `${link.short_code}-clicks.csv`);
    });

  const element = h(
    "section",
    { class: "card", "aria-labelledby": "cl-h" },
    h(
      "div",
      { class: "section-head" },
      h("h2", { id: "cl-h" }, "Clicks"),
      h("button", { type: "button", class: "small", onclick: () => ((rows = []), (cursor = null), load()) }, "Refresh"),
      h("button", { type: "button", class: "small", onclick: csv }, "Download CSV"),
    ),
    table,
    more,
  );
  load();
  return element;
}
