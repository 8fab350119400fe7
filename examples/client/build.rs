//! Generates the client from the committed OpenAPI document at build time.

fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi/openapi.json");
    println!("cargo:rerun-if-changed={path}");
    let text = std::fs::read_to_string(path).expect("openapi/openapi.json");
    let mut document: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    without_csv_uploads(&mut document);
    let spec: openapiv3::OpenAPI =
        serde_json::from_value(document).expect("an OpenAPI 3.0 document");
    let mut generator = progenitor::Generator::default();
    let tokens = generator
        .generate_tokens(&spec)
        .unwrap_or_else(|e| panic!("progenitor cannot generate a client: {e}"));
    let file = syn::parse2(tokens).expect("generated code parses");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("client.rs");
    std::fs::write(out, prettyplease::unparse(&file)).unwrap();
}

/// progenitor 0.11 sends JSON, form and octet-stream bodies only: the CSV import
/// (`text/csv`) is left out of this client (send the file with any HTTP client).
fn without_csv_uploads(document: &mut serde_json::Value) {
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        if let Some(operations) = item.as_object_mut() {
            operations.retain(|_, operation| {
                operation["requestBody"]["content"]
                    .as_object()
                    .is_none_or(|content| !content.contains_key("text/csv"))
            });
        }
    }
    paths.retain(|_, item| item.as_object().is_some_and(|o| !o.is_empty()));
}
