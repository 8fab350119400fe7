//! Generates the client from the committed OpenAPI document at build time.

fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi/openapi.json");
    println!("cargo:rerun-if-changed={path}");
    let text = std::fs::read_to_string(path).expect("openapi/openapi.json");
    let spec: openapiv3::OpenAPI = serde_json::from_str(&text).expect("an OpenAPI 3.0 document");
    let mut generator = progenitor::Generator::default();
    let tokens = generator
        .generate_tokens(&spec)
        .unwrap_or_else(|e| panic!("progenitor cannot generate a client: {e}"));
    let file = syn::parse2(tokens).expect("generated code parses");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("client.rs");
    std::fs::write(out, prettyplease::unparse(&file)).unwrap();
}
