// Import and export: every link as CSV, and a CSV (hoplink's own, Shlink's or Bitly's)
// imported with a report of each row that failed.

import * as api from "./api.js";
import { h, fill, field, onSubmit, heading, download, attempt } from "./ui.js";

export async function dataScreen(root) {
  const report = h("div", { "aria-live": "polite" });
  const file = h("input", { type: "file", name: "file", accept: ".csv,text/csv", required: true });
  const importForm = onSubmit(
    h(
      "form",
      { class: "card", novalidate: true },
      h("h2", {}, "Import links"),
      h("p", { class: "hint" }, "A CSV from hoplink's export, Shlink or Bitly, up to 10 MiB. Codes you already hold are skipped."),
      field("CSV file", file),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Import")),
    ),
    async () => {
      const chosen = file.files[0];
      if (!chosen) throw Object.assign(new Error("Choose a CSV file first."), { field: "file" });
      fill(report, h("p", {}, "Importing…"));
      const r = await api.json("POST", "/api/v1/urls/import", { body: chosen, type: "text/csv" });
      fill(
        report,
        h("p", { class: "report" }, `${r.created} created, ${r.skipped} skipped, ${r.failed.length} failed.`),
        r.failed.length
          ? h("ul", { class: "failures" }, r.failed.map((f) => h("li", {}, `Line ${f.line}: ${f.detail} (${f.code})`)))
          : null,
      );
    },
  );
  const exportBox = h(
    "section",
    { class: "card" },
    h("h2", {}, "Export links"),
    h("p", { class: "hint" }, "All your links as one CSV file, ready to import here or elsewhere."),
    h(
      "button",
      {
        type: "button",
        onclick: () => attempt(async () => download(await api.blob("/api/v1/urls/export"), "hoplink-links.csv")),
      },
      "Download CSV",
    ),
  );
  fill(root, heading("Import & export"), exportBox, importForm, report);
}
