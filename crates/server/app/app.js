// The dashboard's shell: the navigation, the screens by URL fragment (`#/links`, …) and
// the sign-in and registration screens. Every screen talks to the public API only.

import * as api from "./api.js";
import { h, fill, field, onSubmit, heading, go } from "./ui.js";
import { linkList, linkNew } from "./links.js";
import { linkDetail } from "./detail.js";
import { keysScreen } from "./keys.js";
import { webhooksScreen, webhookDetail } from "./webhooks.js";
import { dataScreen } from "./data.js";
import { adminScreen } from "./admin.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");

// Fragment → screen. `:id` parts are handed to the screen.
const screens = [
  ["/signin", signIn, false],
  ["/register", register, false],
  ["/links", linkList, true],
  ["/links/new", linkNew, true],
  ["/links/:id", linkDetail, true],
  ["/keys", keysScreen, true],
  ["/webhooks", webhooksScreen, true],
  ["/webhooks/:id", webhookDetail, true],
  ["/data", dataScreen, true],
  ["/admin", adminScreen, true],
];

function match(path) {
  for (const [pattern, screen, needsUser] of screens) {
    const want = pattern.split("/");
    const got = path.split("/");
    if (want.length !== got.length) continue;
    const params = {};
    if (want.every((w, i) => (w.startsWith(":") ? ((params[w.slice(1)] = decodeURIComponent(got[i])), got[i] !== "") : w === got[i]))) {
      return { screen, needsUser, params };
    }
  }
  return null;
}

let generation = 0;
// The screen someone asked for before signing in, shown once they have.
let wanted = null;

async function route() {
  const path = location.hash.startsWith("#/") ? location.hash.slice(1).split("?")[0] : "/links";
  const found = match(path);
  if (!found) {
    go(api.user() ? "/links" : "/signin");
    return;
  }
  if (found.needsUser && !api.user()) {
    wanted = path;
    go("/signin");
    return;
  }
  if (!found.needsUser && api.user()) {
    go("/links");
    return;
  }
  highlight(path);
  const mine = ++generation;
  main.setAttribute("aria-busy", "true");
  const content = h("div", { class: "screen" });
  try {
    await found.screen(content, found.params);
  } finally {
    main.removeAttribute("aria-busy");
  }
  if (mine !== generation) return;
  fill(main, content);
  const title = content.querySelector("h1");
  document.title = title ? `${title.textContent} · hoplink` : "hoplink";
  if (title) title.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

function highlight(path) {
  for (const a of nav.querySelectorAll("a")) {
    const target = a.getAttribute("href").slice(1);
    if (path === target || path.startsWith(`${target}/`)) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function renderNav(user) {
  if (!user) {
    fill(nav);
    nav.hidden = true;
    return;
  }
  const items = [
    ["#/links", "Links"],
    ["#/keys", "API keys"],
    ["#/webhooks", "Webhooks"],
    ["#/data", "Import & export"],
  ];
  if (user.role === "admin") items.push(["#/admin", "Admin"]);
  fill(
    nav,
    h("ul", {}, items.map(([href, text]) => h("li", {}, h("a", { href }, text)))),
    h(
      "div",
      { class: "who" },
      h("span", { class: "email" }, user.email),
      h("button", { type: "button", id: "sign-out", onclick: () => api.signOut() }, "Sign out"),
    ),
  );
  nav.hidden = false;
}

function credentialsForm(submitText, withName) {
  const email = h("input", { name: "email", type: "email", autocomplete: "email", required: true });
  const password = h("input", {
    name: "password",
    type: "password",
    autocomplete: withName ? "new-password" : "current-password",
    required: true,
    minlength: withName ? 8 : null,
  });
  return h(
    "form",
    { class: "card narrow", novalidate: true },
    field("Email", email),
    withName ? field("Full name (optional)", h("input", { name: "full_name", autocomplete: "name", maxlength: 200 })) : null,
    field("Password", password, withName ? "At least 8 characters." : null),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, submitText)),
  );
}

async function signIn(root) {
  const form = onSubmit(credentialsForm("Sign in", false), async (data) => {
    await api.signIn(data.get("email"), data.get("password"));
  });
  fill(
    root,
    heading("Sign in"),
    form,
    h("p", { class: "aside" }, "No account yet? ", h("a", { href: "#/register" }, "Create one")),
  );
}

async function register(root) {
  const form = onSubmit(credentialsForm("Create account", true), async (data) => {
    await api.register(data.get("email"), data.get("password"), data.get("full_name"));
  });
  fill(
    root,
    heading("Create an account"),
    form,
    h("p", { class: "aside" }, "Have an account? ", h("a", { href: "#/signin" }, "Sign in")),
  );
}

api.onSession((user) => {
  renderNav(user);
  const next = user ? wanted || "/links" : "/signin";
  wanted = null;
  go(next);
});

document.getElementById("skip").addEventListener("click", (e) => {
  e.preventDefault();
  (main.querySelector("h1") || main).focus();
});

window.addEventListener("hashchange", route);
renderNav(null);
route();
