//! The OpenAPI document: generated from the API's types, then completed from the route
//! table. The table adds the redirect route (answered outside poem-openapi) and each
//! operation's own error statuses with problem-document bodies; request schemas are
//! marked `additionalProperties: false` (bodies refuse unknown fields), optional
//! response properties `nullable` (they are sent as `null`), and every schema example is
//! repeated as its operation's example.

use crate::routes::{Handler, ROUTES};
use serde_json::{Map, Value, json};

/// What each error status means, and an example problem document of it.
fn error_response(status: u16) -> Value {
    let (description, code, detail, field) = match status {
        400 => (
            "The body is not JSON.",
            "invalid_json",
            "the body is not valid JSON (syntax error at line 1, column 17)",
            None,
        ),
        401 => (
            "Credentials are missing, wrong, expired or revoked.",
            "unauthorized",
            "missing, invalid or expired credentials",
            None,
        ),
        403 => (
            "The caller is not an administrator.",
            "forbidden",
            "administrators only",
            None,
        ),
        404 => (
            "No such resource, or not yours.",
            "not_found",
            "link not found",
            None,
        ),
        409 => (
            "Already taken (`alias_taken`, `email_taken`).",
            "alias_taken",
            "short code \"launch\" is already taken",
            Some("custom_alias"),
        ),
        410 => (
            "The link expired, was disabled, was blocked (`link_blocked`), or used up its clicks.",
            "expired",
            "the link has expired",
            None,
        ),
        413 => (
            "The body is larger than 4 MiB.",
            "payload_too_large",
            "request bodies are limited to 4194304 bytes",
            None,
        ),
        415 => (
            "The body is not `application/json`.",
            "unsupported_media_type",
            "send the body as application/json",
            None,
        ),
        422 => (
            "A value breaks a rule; `field` names it (`items[3].max_clicks` inside arrays).",
            "invalid_url",
            "original_url host 10.0.0.1 is a private address",
            Some("original_url"),
        ),
        429 => (
            "Rate limited: retry after `Retry-After` seconds.",
            "rate_limited",
            "too many requests; retry after 12 s",
            None,
        ),
        _ => (
            "A backend is unavailable; try again.",
            "backend_unavailable",
            "the postgres backend is unavailable; try again",
            None,
        ),
    };
    let title = poem::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let mut example = json!({
        "type": format!("urn:hoplink:problem:{code}"),
        "title": title, "status": status, "detail": detail, "code": code,
    });
    if let Some(field) = field {
        example["field"] = field.into();
    }
    let mut response = json!({
        "description": description,
        "content": {"application/problem+json": {
            "schema": {"$ref": "#/components/schemas/Problem"},
            "example": example,
        }},
    });
    let header =
        |description: &str, ty: &str| json!({"description": description, "schema": {"type": ty}});
    match status {
        401 => {
            response["headers"] =
                json!({"WWW-Authenticate": header("`Bearer realm=\"hoplink\"`", "string")});
        }
        429 => {
            response["headers"] = json!({
                "Retry-After": header("Seconds until a request is allowed", "integer"),
                "RateLimit-Limit": header("Requests allowed per window", "integer"),
                "RateLimit-Remaining": header("Requests left now", "integer"),
                "RateLimit-Reset": header("Seconds until the full quota is back", "integer"),
            });
        }
        _ => {}
    }
    response
}

/// An HTML page answer of the visitor-facing paths.
fn html_page(description: &str) -> Value {
    json!({
        "description": description,
        "headers": {
            "Content-Security-Policy": {"description": "Only the page's own stylesheet; forms post to the same origin", "schema": {"type": "string"}},
            "Cache-Control": {"description": "`no-store`", "schema": {"type": "string"}}
        },
        "content": {"text/html": {"schema": {"type": "string"}}}
    })
}

fn code_parameter() -> Value {
    json!({
        "name": "short_code", "in": "path", "required": true,
        "schema": {"type": "string", "minLength": 1, "maxLength": 64},
        "description": "Generated code or custom alias",
        "example": "launch"
    })
}

fn redirect_operation(method: &str) -> Value {
    let location =
        json!({"description": "The destination", "required": true, "schema": {"type": "string"}});
    let redirect = |description: &str, cache: &str| {
        let mut headers = json!({"Location": location});
        if !cache.is_empty() {
            headers["Cache-Control"] = json!({"description": cache, "schema": {"type": "string"}});
        }
        json!({"description": description, "headers": headers})
    };
    let smart = "`private, max-age=0`; `private, no-store` for a link with redirect rules, query forwarding or a password";
    let mut responses = json!({
        "301": redirect("Moved Permanently (the link's redirect_type)", ""),
        "302": redirect("Found (the default; a domain's fallback redirects too)", smart),
        "307": redirect("Temporary Redirect", smart),
        "308": redirect("Permanent Redirect", ""),
    });
    let mut operation = json!({
        "tags": ["Redirect"],
        "operationId": format!("redirect_{method}"),
        "parameters": [code_parameter()],
    });
    if method == "post" {
        operation["summary"] = "Give a protected link's password".into();
        operation["description"] = "The password form of a protected link posts here. The right password redirects and counts one click; a wrong one answers the form again (401). After 10 wrong passwords from one address in 10 minutes the link answers 429 to that address. Every answer but the redirect is an HTML page.".into();
        operation["requestBody"] = json!({
            "required": true,
            "content": {"application/x-www-form-urlencoded": {"schema": {
                "type": "object",
                "properties": {"password": {"type": "string", "description": "The link's password (any other text is a wrong one)"}}
            }}}
        });
        responses["401"] = html_page("Wrong password: the form again, saying so");
        responses["404"] = html_page("No such link");
        responses["410"] =
            html_page("The link expired, was disabled, blocked or used up its clicks");
        responses["413"] = html_page("The form is over 4 KiB");
        responses["415"] = html_page("Not a form (`application/x-www-form-urlencoded`)");
        let mut limited = html_page("Too many wrong passwords, or the redirect flood guard");
        limited["headers"]["Retry-After"] =
            json!({"description": "Seconds until a try is allowed", "schema": {"type": "integer"}});
        responses["429"] = limited;
        responses["503"] = html_page("A backend is unavailable; try again");
    } else {
        operation["summary"] = "Follow a short link".into();
        operation["description"] = if method == "get" {
            "Redirects to the link's destination, or to the first of its redirect rules that matches the visit (device, OS, browser, language, country, query, address, date), with the request's query appended when the link forwards it. Counts a click (bots and link-preview crawlers apart); the answer never waits for analytics. A password-protected link answers its password form (200, nothing counted) unless `Authorization: Basic` carries the right password (any user name)."
        } else {
            "Same status and headers as GET, no body, and no click counted."
        }
        .into();
        responses["200"] = html_page("A password-protected link: the form asking for its password");
        let mut wrong = html_page("`Authorization: Basic` with a wrong password: the form again");
        wrong["headers"]["WWW-Authenticate"] = json!({"description": "`Basic realm=\"hoplink\", charset=\"UTF-8\"`", "schema": {"type": "string"}});
        responses["401"] = wrong;
    }
    operation["responses"] = responses;
    operation
}

fn preview_operation(method: &str) -> Value {
    let page = |description: &str| html_page(description);
    json!({
        "tags": ["Redirect"],
        "summary": "Preview where a short link goes",
        "description": "An HTML page naming the destination this visitor would reach (and the link's title) with a link to go on; nothing is counted. A password-protected link's destination is not shown.",
        "operationId": format!("preview_{method}"),
        "parameters": [code_parameter()],
        "responses": {
            "200": page("The preview"),
            "404": page("No such link"),
            "410": page("The link expired, was disabled, blocked or used up its clicks"),
            "429": page("The redirect flood guard"),
            "503": page("A backend is unavailable; try again"),
        }
    })
}

fn root_operation(method: &str) -> Value {
    json!({
        "tags": ["Redirect"],
        "summary": "The home page of a short domain",
        "description": "Redirects to the domain's `root_redirect`; without one, the default domain redirects to the dashboard (`/app/`) and other domains answer 404.",
        "operationId": format!("root_{method}"),
        "responses": {
            "302": {
                "description": "To the domain's root redirect, or the dashboard",
                "headers": {"Location": {"description": "Where", "required": true, "schema": {"type": "string"}}}
            }
        }
    })
}

/// Whether a response is one of the generated catch-all problem answers.
fn is_problem(response: &Value) -> bool {
    response
        .get("content")
        .and_then(|c| c.get("application/problem+json"))
        .is_some()
}

fn schema_name(reference: &Value) -> Option<String> {
    reference
        .get("$ref")?
        .as_str()?
        .strip_prefix("#/components/schemas/")
        .map(str::to_string)
}

/// Names of the schemas reachable from `schema` (itself included when a reference).
fn reachable(schemas: &Map<String, Value>, schema: &Value, into: &mut Vec<String>) {
    if let Some(name) = schema_name(schema) {
        if into.contains(&name) {
            return;
        }
        into.push(name.clone());
        if let Some(target) = schemas.get(&name) {
            reachable(schemas, target, into);
        }
        return;
    }
    match schema {
        Value::Object(map) => {
            for value in map.values() {
                reachable(schemas, value, into);
            }
        }
        Value::Array(items) => {
            for value in items {
                reachable(schemas, value, into);
            }
        }
        _ => {}
    }
}

fn media_schemas(content: Option<&Value>) -> Vec<Value> {
    content
        .and_then(Value::as_object)
        .map(|c| {
            c.values()
                .filter_map(|m| m.get("schema").cloned())
                .collect()
        })
        .unwrap_or_default()
}

/// Completes the generated document (see the module documentation) and renders it.
pub fn complete(generated: &str) -> String {
    let mut doc: Value = serde_json::from_str(generated).unwrap_or_else(|_| json!({}));
    for route in ROUTES {
        let describe = match route.handler {
            Handler::Redirect => redirect_operation,
            Handler::Preview => preview_operation,
            Handler::Root => root_operation,
            _ => continue,
        };
        let mut item = Map::new();
        for op in route.operations {
            let method = op.method.as_str().to_ascii_lowercase();
            let operation = describe(&method);
            item.insert(method, operation);
        }
        doc["paths"][route.path] = Value::Object(item);
    }
    // Each operation's own error statuses, from the table.
    for route in ROUTES {
        if !route.handler.documented() {
            continue;
        }
        for op in route.operations {
            let method = op.method.as_str().to_ascii_lowercase();
            let Some(responses) = doc["paths"][route.path][&method]["responses"].as_object_mut()
            else {
                continue;
            };
            responses.retain(|status, response| {
                !(status.starts_with('4') || status.starts_with('5')) || !is_problem(response)
            });
            for status in op.errors {
                responses
                    .entry(status.to_string())
                    .or_insert_with(|| error_response(*status));
            }
        }
    }
    let mut requests = Vec::new();
    let mut responses = Vec::new();
    let schemas = doc["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for operation in item.values_mut() {
                for schema in media_schemas(operation["requestBody"].get("content")) {
                    reachable(&schemas, &schema, &mut requests);
                }
                set_media_examples(&schemas, operation["requestBody"].get_mut("content"));
                if let Some(answers) = operation["responses"].as_object_mut() {
                    for answer in answers.values_mut() {
                        for schema in media_schemas(answer.get("content")) {
                            reachable(&schemas, &schema, &mut responses);
                        }
                        set_media_examples(&schemas, answer.get_mut("content"));
                    }
                }
            }
        }
    }
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        for (name, schema) in schemas.iter_mut() {
            if requests.contains(name) && schema["type"] == "object" {
                schema["additionalProperties"] = Value::Bool(false);
            }
            if responses.contains(name) && !requests.contains(name) {
                mark_optional_nullable(schema);
            }
        }
    }
    let enums: Map<String, Value> = doc["components"]["schemas"]
        .as_object()
        .map(|all| {
            all.iter()
                .filter(|(_, s)| s.get("enum").is_some())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    inline_enums(&enums, &mut doc["paths"]);
    inline_enums(&enums, &mut doc["components"]["schemas"]);
    null_in_nullable_enums(&mut doc);
    if let Some(condition) = doc["components"]["schemas"].get_mut("RuleCondition") {
        *condition = json!({
            "description": condition.get("description").cloned().unwrap_or_default(),
            "oneOf": condition_branches(),
        });
    }
    if let Some(tags) = doc["tags"].as_array_mut() {
        tags.push(json!({"name": "Redirect", "description": "Short links redirect here."}));
    }
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// Text without control characters, as the API's text fields are checked.
const CONTROL_FREE: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";

/// The values each type of rule condition takes, one branch per type: the flat object
/// (`type`, `value`, `key`) that the server parses, with what the service checks.
fn condition_branches() -> Value {
    use hoplink::rules::{BROWSERS, DEVICES, OPERATING_SYSTEMS};
    let branch = |kind: &str, value: Value, key: bool| {
        // `key` is parsed with the same rules whatever the type, so every branch states them.
        let mut properties = json!({
            "type": {"type": "string", "enum": [kind]},
            "value": value,
            "key": {"type": "string", "nullable": true, "minLength": 1, "maxLength": 256, "pattern": CONTROL_FREE, "description": "Only `query` conditions use it"},
        });
        let mut required = json!(["type", "value"]);
        if key {
            properties["key"] = json!({"type": "string", "minLength": 1, "maxLength": 256, "pattern": CONTROL_FREE, "description": "The query parameter"});
            required = json!(["type", "value", "key"]);
        }
        json!({
            "type": "object",
            "title": format!("{kind} condition"),
            "additionalProperties": false,
            "properties": properties,
            "required": required,
        })
    };
    let one_of = |values: &[&str]| json!({"type": "string", "enum": values});
    let text = |pattern: &str, description: &str| json!({"type": "string", "minLength": 1, "maxLength": 256, "pattern": pattern, "description": description});
    let instant =
        json!({"type": "string", "format": "date-time", "description": "An RFC 3339 instant"});
    json!([
        branch("device", one_of(DEVICES), false),
        branch("os", one_of(OPERATING_SYSTEMS), false),
        branch("browser", one_of(BROWSERS), false),
        branch(
            "language",
            text(
                "^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$",
                "A language tag: `de` matches `de` and `de-AT`",
            ),
            false
        ),
        branch(
            "country",
            text("^[A-Za-z]{2}$", "ISO 3166-1 alpha-2, any case"),
            false
        ),
        branch(
            "query",
            text(CONTROL_FREE, "The parameter's value, or `*` for any"),
            true
        ),
        branch(
            "ip",
            text(
                r"^[0-9A-Fa-f.:]+(/[0-9]{1,3})?$",
                "An IPv4 or IPv6 address, or a CIDR block"
            ),
            false
        ),
        branch("after", instant.clone(), false),
        branch("before", instant, false),
    ])
}

/// poem-openapi refers to an enum that a field makes nullable or describes through
/// `allOf: [{$ref}, {nullable, description}]`, which generators read as a union of
/// an enum and nothing; the enum written out in place says the same plainly.
fn inline_enums(enums: &Map<String, Value>, value: &mut Value) {
    match value {
        Value::Object(map) => {
            let inlined = match map.get("allOf").and_then(Value::as_array) {
                Some(parts) if parts.len() == 2 => schema_name(&parts[0])
                    .and_then(|name| enums.get(&name))
                    .filter(|_| parts[1].get("$ref").is_none() && parts[1].get("type").is_none())
                    .map(|target| {
                        let mut merged = target.clone();
                        if let (Some(merged), Some(extra)) =
                            (merged.as_object_mut(), parts[1].as_object())
                        {
                            merged.remove("title");
                            merged.extend(extra.clone());
                        }
                        merged
                    }),
                _ => None,
            };
            match inlined {
                Some(inlined) => *value = inlined,
                None => map.values_mut().for_each(|v| inline_enums(enums, v)),
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| inline_enums(enums, v)),
        _ => {}
    }
}

/// OpenAPI 3.0: `nullable` has no effect on an `enum` that does not list `null`.
fn null_in_nullable_enums(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("nullable") == Some(&Value::Bool(true))
                && let Some(Value::Array(options)) = map.get_mut("enum")
                && !options.contains(&Value::Null)
            {
                options.push(Value::Null);
            }
            map.values_mut().for_each(null_in_nullable_enums);
        }
        Value::Array(items) => items.iter_mut().for_each(null_in_nullable_enums),
        _ => {}
    }
}

/// Optional properties of a response are sent as `null` when absent.
fn mark_optional_nullable(schema: &mut Value) {
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    // `get_mut`, not indexing: indexing would add `"properties": null` to every schema
    // without properties (an inlined enum), which is no valid schema.
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, property) in properties.iter_mut() {
            // References (bare or in `allOf`) are objects left out when absent, never null.
            let reference = property.get("$ref").is_some() || property.get("allOf").is_some();
            if !required.contains(name) && !reference {
                property["nullable"] = Value::Bool(true);
            }
        }
    }
}

fn set_media_examples(schemas: &Map<String, Value>, content: Option<&mut Value>) {
    let Some(content) = content.and_then(Value::as_object_mut) else {
        return;
    };
    for media in content.values_mut() {
        if media.get("example").is_some() {
            continue;
        }
        let example = media
            .get("schema")
            .and_then(schema_name)
            .and_then(|name| schemas.get(&name)?.get("example").cloned());
        if let Some(example) = example {
            media["example"] = example;
        }
    }
}

/// Where the document and the route table disagree (empty when they agree): every
/// operation of the document is in the table with the same path and method, and every
/// route the table gives to the API or the redirect is in the document.
pub fn disagreements(document: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let paths = document["paths"].as_object().cloned().unwrap_or_default();
    for (path, item) in &paths {
        let Some(route) = ROUTES.iter().find(|r| r.path == path) else {
            found.push(format!(
                "{path} is in the document but not in the route table"
            ));
            continue;
        };
        for method in item
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let known = route
                .operations
                .iter()
                .any(|o| o.method.as_str().eq_ignore_ascii_case(&method));
            if !known {
                found.push(format!(
                    "{} {path} is in the document but not in the route table",
                    method.to_uppercase()
                ));
            }
        }
    }
    for route in ROUTES {
        if !route.handler.documented() {
            continue;
        }
        for op in route.operations {
            let method = op.method.as_str().to_ascii_lowercase();
            if paths.get(route.path).and_then(|i| i.get(&method)).is_none() {
                found.push(format!(
                    "{} {} is in the route table but not in the document",
                    op.method, route.path
                ));
            }
        }
    }
    found
}
