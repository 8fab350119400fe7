// The redirect rules of a link: each sends the visitors who match all of its conditions
// to its own URL; the first matching rule wins, the link's URL takes everyone else.

import { h, fill, field, toLocalInput } from "./ui.js";

const CHOICES = {
  device: ["desktop", "mobile", "tablet"],
  os: ["ios", "android", "windows", "macos", "linux", "chromeos"],
  browser: ["chrome", "safari", "firefox", "edge", "opera", "samsung"],
};
const TYPES = [
  ["device", "Device"],
  ["os", "Operating system"],
  ["browser", "Browser"],
  ["language", "Language (e.g. de)"],
  ["country", "Country (two letters)"],
  ["query", "Query parameter"],
  ["ip", "IP address or CIDR"],
  ["after", "After a time"],
  ["before", "Before a time"],
];
const MAX_RULES = 20;
const MAX_CONDITIONS = 10;

/** `{element, value()}`: the editor, and the rules it holds in the API's shape. */
export function rulesEditor(initial) {
  const list = h("ol", { class: "rules" });
  const add = h("button", { type: "button", class: "small" }, "Add a rule");
  const rules = [];

  function redraw() {
    fill(
      list,
      rules.map((r, i) => {
        r.legend.textContent = `Rule ${i + 1}`;
        return r.element;
      }),
    );
    add.disabled = rules.length >= MAX_RULES;
  }

  function addRule(rule) {
    const url = h("input", { type: "url", required: true, maxlength: 2048, value: rule?.url || "", placeholder: "https://example.com/mobile" });
    const conditions = h("div", { class: "conditions" });
    const conds = [];
    const legend = h("legend", {});
    const addCond = h("button", { type: "button", class: "small" }, "Add a condition");
    const entry = {
      legend,
      element: null,
      value: () => ({ url: url.value.trim(), conditions: conds.map((c) => c.value()) }),
    };
    function redrawConds() {
      fill(conditions, conds.map((c) => c.element));
      addCond.disabled = conds.length >= MAX_CONDITIONS;
    }
    function addCondition(c) {
      const made = conditionRow(c, () => {
        conds.splice(conds.indexOf(made), 1);
        if (!conds.length) addCondition(null);
        redrawConds();
      });
      conds.push(made);
      redrawConds();
    }
    addCond.addEventListener("click", () => addCondition(null));
    entry.element = h(
      "li",
      {},
      h(
        "fieldset",
        { class: "rule" },
        legend,
        field("Send to", url),
        conditions,
        h(
          "div",
          { class: "actions" },
          addCond,
          h(
            "button",
            {
              type: "button",
              class: "small danger",
              onclick: () => {
                rules.splice(rules.indexOf(entry), 1);
                redraw();
                add.focus();
              },
            },
            "Remove this rule",
          ),
        ),
      ),
    );
    rules.push(entry);
    for (const c of rule?.conditions || [null]) addCondition(c);
    redraw();
    return entry;
  }

  add.addEventListener("click", () => addRule(null).element.querySelector("input").focus());
  for (const r of initial) addRule(r);

  const element = h(
    "fieldset",
    { class: "rules-box" },
    h("legend", {}, "Redirect rules"),
    h("p", { class: "hint" }, "Visitors who match every condition of a rule go to its URL; the first matching rule wins."),
    list,
    add,
  );
  return { element, value: () => rules.map((r) => r.value()) };
}

function conditionRow(initial, remove) {
  const type = h("select", {}, TYPES.map(([v, text]) => h("option", { value: v, selected: initial?.type === v }, text)));
  const slot = h("div", { class: "cond-value" });
  let valueInput;
  let keyInput;
  function draw() {
    const t = type.value;
    const keep = valueInput && valueInput.tagName === "INPUT" ? valueInput.value : "";
    keyInput = t === "query" ? h("input", { maxlength: 256, value: initial?.type === "query" ? initial.key || "" : "", placeholder: "utm_source" }) : null;
    if (CHOICES[t]) {
      valueInput = h("select", {}, CHOICES[t].map((c) => h("option", { value: c, selected: initial?.value === c }, c)));
    } else if (t === "after" || t === "before") {
      const v = initial?.type === t ? toLocalInput(initial.value) : "";
      valueInput = h("input", { type: "datetime-local", value: v });
    } else {
      valueInput = h("input", { maxlength: 256, value: initial?.type === t ? initial.value : keep });
    }
    fill(slot, keyInput ? field("Parameter", keyInput) : null, field(t === "query" ? "Value (* for any)" : "Value", valueInput));
  }
  type.addEventListener("change", draw);
  draw();
  const element = h(
    "div",
    { class: "condition" },
    field("Condition", type),
    slot,
    h("button", { type: "button", class: "small", onclick: remove, "aria-label": "Remove this condition" }, "Remove"),
  );
  return {
    element,
    value() {
      const t = type.value;
      let value = valueInput.value.trim();
      if ((t === "after" || t === "before") && value) value = new Date(value).toISOString();
      const c = { type: t, value };
      if (keyInput) c.key = keyInput.value.trim();
      return c;
    },
  };
}
