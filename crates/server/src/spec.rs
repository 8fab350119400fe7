//! The OpenAPI document: generated from the API's types, plus the redirect route, which
//! is served by a plain endpoint and described here as data.

use serde_json::{Value, json};

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

fn redirect_operation(method: &str) -> Value {
    let location =
        json!({"description": "The original URL", "required": true, "schema": {"type": "string"}});
    let redirect = |description: &str, cache: bool| {
        let mut headers = json!({"Location": location});
        if cache {
            headers["Cache-Control"] =
                json!({"description": "`private, max-age=0`", "schema": {"type": "string"}});
        }
        json!({"description": description, "headers": headers})
    };
    let counted = if method == "get" {
        "Counts a click (bots and link-preview crawlers are counted apart); the response never waits for analytics."
    } else {
        "Same status and headers as GET, no body, and no click counted."
    };
    json!({
        "tags": ["Redirect"],
        "summary": "Follow a short link",
        "description": counted,
        "operationId": format!("redirect_{method}"),
        "parameters": [{
            "name": "short_code", "in": "path", "required": true,
            "schema": {"type": "string"}, "description": "Generated code or custom alias"
        }],
        "responses": {
            "301": redirect("Moved Permanently (the link's redirect_type)", false),
            "302": redirect("Found (the default)", true),
            "307": redirect("Temporary Redirect", true),
            "308": redirect("Permanent Redirect", false),
            "404": problem("Unknown or deleted code"),
            "410": problem("Expired, disabled, or max_clicks reached"),
            "429": problem("Redirect flood guard: retry after `Retry-After` seconds")
        }
    })
}

/// Adds the redirect route to the generated document and renders it.
pub fn complete(generated: &str) -> String {
    let mut doc: Value = serde_json::from_str(generated).unwrap_or_else(|_| json!({}));
    doc["paths"]["/{short_code}"] = json!({
        "get": redirect_operation("get"),
        "head": redirect_operation("head"),
    });
    if let Some(tags) = doc["tags"].as_array_mut() {
        tags.push(json!({"name": "Redirect", "description": "Short links redirect here."}));
    }
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}
