//! Links in and out as CSV: hoplink's own export, and the CSV exports of Bitly and
//! Shlink, told apart by their header line. Cells are quoted as RFC 4180 says, and a
//! cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) is written
//! with a leading `'` (and read back without it).

use crate::error::{Error, Result};
use crate::model::{Click, Link, NewLink, RedirectType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The header of hoplink's export (and of its import format).
pub const EXPORT_HEADER: &str = "short_code,domain,short_url,original_url,title,tags,redirect_type,created_at,expires_at,max_clicks,click_count,is_active";

/// The header of the raw click log as CSV.
pub const CLICKS_HEADER: &str = "id,at,bot,referrer,browser,os,device,country,visitor";

/// Largest import, in bytes.
pub const MAX_IMPORT_BYTES: usize = 10 * 1024 * 1024;

/// `text` as one CSV cell: guarded against formulas, quoted when it must be.
pub fn csv_cell(text: &str) -> Cow<'_, str> {
    let guarded = matches!(text.as_bytes().first(), Some(b'=' | b'+' | b'-' | b'@'));
    if !guarded && !text.contains([',', '"', '\r', '\n']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 4);
    out.push('"');
    if guarded {
        out.push('\'');
    }
    out.push_str(&text.replace('"', "\"\""));
    out.push('"');
    Cow::Owned(out)
}

fn push_row(out: &mut String, cells: &[&str]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&csv_cell(cell));
    }
    out.push_str("\r\n");
}

fn instant(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Appends `link`'s export row (its domain's host and short URL given).
pub fn export_row(out: &mut String, link: &Link, host: &str, short_url: &str) {
    let tags = link.tags.join("|");
    let redirect_type = link.redirect_type.status().to_string();
    let created_at = instant(&link.created_at);
    let expires_at = link.expires_at.as_ref().map(instant).unwrap_or_default();
    let max_clicks = link.max_clicks.map(|n| n.to_string()).unwrap_or_default();
    let click_count = link.click_count.to_string();
    push_row(
        out,
        &[
            &link.short_code,
            host,
            short_url,
            &link.original_url,
            link.title.as_deref().unwrap_or_default(),
            &tags,
            &redirect_type,
            &created_at,
            &expires_at,
            &max_clicks,
            &click_count,
            if link.is_active { "true" } else { "false" },
        ],
    );
}

/// Appends a click's row of the click log CSV.
pub fn click_row(out: &mut String, click: &Click) {
    let id = click.id.to_string();
    let at = instant(&click.at);
    push_row(
        out,
        &[
            &id,
            &at,
            if click.bot { "true" } else { "false" },
            &click.referrer,
            &click.browser,
            &click.os,
            &click.device,
            &click.country,
            &click.visitor,
        ],
    );
}

/// Where an import comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportFormat {
    /// hoplink's own export.
    Hoplink,
    /// Bitly's CSV export of links.
    Bitly,
    /// Shlink's CSV export of short URLs (web client), or shlink-importer's CSV layout.
    Shlink,
}

/// One row to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// Its line in the file (the header is line 1).
    pub line: u64,
    /// The link to create; `custom_alias` is the row's code, kept when free.
    pub link: NewLink,
    /// Whether the link redirects (hoplink's export keeps disabled links disabled).
    pub is_active: bool,
    /// Whether the domain must exist here (hoplink's export); other sources name their
    /// own domains (`bit.ly`), and their links land on the default domain.
    pub domain_required: bool,
}

/// A row that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportFailure {
    /// Its line in the file.
    pub line: u64,
    /// Machine-readable reason (`invalid_url`, `alias_taken`, `invalid_row`, …).
    pub code: String,
    /// What was wrong, for humans.
    pub detail: String,
}

impl ImportFailure {
    /// The failure of `line` for `error`.
    pub fn of(line: u64, error: &Error) -> Self {
        let code = match error {
            Error::Invalid { code, .. } | Error::Conflict { code, .. } => code,
            Error::NotFound { .. } => "not_found",
            Error::Forbidden { .. } => "forbidden",
            _ => "import_failed",
        };
        ImportFailure {
            line,
            code: code.to_string(),
            detail: error.to_string(),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Links created.
    pub created: u64,
    /// Rows whose link already exists here (same code, URL and owner): a second import
    /// of a file creates nothing.
    pub skipped: u64,
    /// Rows refused, each with its reason.
    pub failed: Vec<ImportFailure>,
}

impl ImportReport {
    /// Adds another part's counts.
    pub fn merge(&mut self, other: ImportReport) {
        self.created += other.created;
        self.skipped += other.skipped;
        self.failed.extend(other.failed);
    }
}

/// A header name as compared: lower case, without spaces, `_` or `-`.
fn normalized(name: &str) -> String {
    name.trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

struct Columns {
    format: ImportFormat,
    names: Vec<String>,
}

impl Columns {
    fn detect(header: &csv::StringRecord) -> Result<Columns> {
        let names: Vec<String> = header.iter().map(normalized).collect();
        let has = |n: &str| names.iter().any(|h| h == n);
        let exact: Vec<String> = EXPORT_HEADER.split(',').map(normalized).collect();
        let format = if names == exact {
            ImportFormat::Hoplink
        } else if has("longurl") && has("shortcode") {
            ImportFormat::Shlink
        } else if (has("longurl") || has("destinationurl"))
            && (has("link") || has("bitlink") || has("shortlink") || has("shorturl"))
        {
            ImportFormat::Bitly
        } else {
            return Err(Error::invalid(
                "body",
                "unknown_format",
                "must start with the header line of hoplink's export, Bitly's or Shlink's CSV export",
            ));
        };
        Ok(Columns { format, names })
    }

    fn get<'r>(&self, record: &'r csv::StringRecord, names: &[&str]) -> Option<&'r str> {
        names.iter().find_map(|n| {
            let i = self.names.iter().position(|h| h == n)?;
            let v = record.get(i)?.trim();
            (!v.is_empty()).then_some(v)
        })
    }
}

/// A cell as exported, without the formula guard.
fn unguarded(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if matches!(rest.as_bytes().first(), Some(b'=' | b'+' | b'-' | b'@')) => rest,
        _ => cell,
    }
}

fn bad_row(line: u64, detail: impl Into<String>) -> ImportFailure {
    ImportFailure {
        line,
        code: "invalid_row".into(),
        detail: detail.into(),
    }
}

/// The last path segment of a short link (`https://bit.ly/abc` or `bit.ly/abc`).
fn code_of_short_link(link: &str) -> Option<String> {
    let path = link.split(['?', '#']).next()?;
    let code = path.trim_end_matches('/').rsplit('/').next()?;
    (!code.is_empty() && !code.contains('.')).then(|| code.to_string())
}

fn tags_of(cell: Option<&str>, separators: &[char]) -> Option<Vec<String>> {
    let tags: Vec<String> = cell?
        .split(separators)
        .map(|t| unguarded(t.trim()).to_string())
        .filter(|t| !t.is_empty())
        .collect();
    (!tags.is_empty()).then_some(tags)
}

fn row_of(
    columns: &Columns,
    record: &csv::StringRecord,
    line: u64,
) -> std::result::Result<ImportRow, ImportFailure> {
    let get = |names: &[&str]| columns.get(record, names).map(unguarded);
    let mut row = ImportRow {
        line,
        link: NewLink::default(),
        is_active: true,
        domain_required: false,
    };
    match columns.format {
        ImportFormat::Hoplink => {
            let url =
                get(&["originalurl"]).ok_or_else(|| bad_row(line, "original_url is empty"))?;
            row.link = NewLink {
                custom_alias: get(&["shortcode"]).map(str::to_string),
                domain: get(&["domain"]).map(str::to_string),
                title: get(&["title"]).map(str::to_string),
                tags: tags_of(columns.get(record, &["tags"]), &['|']),
                ..NewLink::new(url)
            };
            row.domain_required = true;
            if let Some(status) = get(&["redirecttype"]) {
                let status: u16 = status
                    .parse()
                    .map_err(|_| bad_row(line, format!("redirect_type {status:?} is no status")))?;
                row.link.redirect_type = Some(RedirectType::try_from(status).map_err(|_| {
                    bad_row(
                        line,
                        format!("redirect_type {status} is none of 301, 302, 307, 308"),
                    )
                })?);
            }
            if let Some(at) = get(&["expiresat"]) {
                let at = DateTime::parse_from_rfc3339(at).map_err(|_| {
                    bad_row(line, format!("expires_at {at:?} is no RFC 3339 instant"))
                })?;
                row.link.expires_at = Some(at.with_timezone(&Utc));
            }
            if let Some(max) = get(&["maxclicks"]) {
                row.link.max_clicks = Some(max.parse().map_err(|_| {
                    bad_row(line, format!("max_clicks {max:?} is no whole number"))
                })?);
            }
            row.is_active = match get(&["isactive"]) {
                None | Some("true") => true,
                Some("false") => false,
                Some(other) => {
                    return Err(bad_row(
                        line,
                        format!("is_active {other:?} is neither true nor false"),
                    ));
                }
            };
        }
        ImportFormat::Shlink => {
            let url = get(&["longurl"]).ok_or_else(|| bad_row(line, "longUrl is empty"))?;
            row.link = NewLink {
                custom_alias: get(&["shortcode"]).map(str::to_string),
                domain: get(&["domain"]).map(str::to_string),
                title: get(&["title"]).map(str::to_string),
                tags: tags_of(columns.get(record, &["tags"]), &['|']),
                ..NewLink::new(url)
            };
        }
        ImportFormat::Bitly => {
            let url = get(&["longurl", "destinationurl"])
                .ok_or_else(|| bad_row(line, "the long URL is empty"))?;
            let short = get(&["link", "bitlink", "shortlink", "shorturl"]);
            row.link = NewLink {
                custom_alias: short.and_then(code_of_short_link),
                title: get(&["title"]).map(str::to_string),
                tags: tags_of(columns.get(record, &["tags"]), &['|', ',', ';']),
                ..NewLink::new(url)
            };
        }
    }
    Ok(row)
}

/// Reads an import file: its format (from the header line) and each row, or why a row
/// can't be read. A file over [`MAX_IMPORT_BYTES`], or with an unknown header, is refused
/// whole.
pub fn parse_import(
    bytes: &[u8],
) -> Result<(
    ImportFormat,
    Vec<std::result::Result<ImportRow, ImportFailure>>,
)> {
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(Error::invalid(
            "body",
            "too_large",
            format!(
                "at most {} MiB per import",
                MAX_IMPORT_BYTES / (1024 * 1024)
            ),
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(bytes);
    let header = reader
        .headers()
        .map_err(|e| Error::invalid("body", "invalid_csv", format!("is no CSV: {e}")))?
        .clone();
    let columns = Columns::detect(&header)?;
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    // Lines are counted here from byte offsets: with `\r\n` line ends (Bitly's and
    // hoplink's files) the reader's own count is one short, and a record's position is
    // that of the `\n` ending the line before it, counted with it.
    let mut counted = (0usize, 1u64);
    let mut line_at = |byte: u64| {
        let byte = (byte as usize + 1).min(bytes.len());
        if byte > counted.0 {
            counted.1 += bytes[counted.0..byte]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            counted.0 = byte;
        }
        counted.1
    };
    loop {
        let start = reader.position().byte();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                if record.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                let line = line_at(record.position().map_or(start, |p| p.byte()));
                rows.push(row_of(&columns, &record, line));
            }
            Err(e) => {
                let line = line_at(e.position().map_or(start, |p| p.byte()));
                rows.push(Err(bad_row(line, e.to_string())));
                if !matches!(
                    e.kind(),
                    csv::ErrorKind::Utf8 { .. } | csv::ErrorKind::UnequalLengths { .. }
                ) {
                    break;
                }
            }
        }
    }
    Ok((columns.format, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_guarded() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-50% sale"), "\"'-50% sale\"");
        assert_eq!(csv_cell("@home"), "\"'@home\"");
        assert_eq!(unguarded("'=1+1"), "=1+1");
        assert_eq!(unguarded("'plain"), "'plain");
    }

    #[test]
    fn formats_are_told_apart_by_their_header() {
        let shlink = b"createdAt,domain,shortCode,shortUrl,longUrl,title,tags,visits\n2024-01-02T10:00:00+00:00,,abc12,https://s.test/abc12,https://example.com/a,A title,one|two,5\n";
        let (format, rows) = parse_import(shlink).unwrap();
        assert_eq!(format, ImportFormat::Shlink);
        let row = rows[0].as_ref().unwrap();
        assert_eq!(row.line, 2);
        assert_eq!(row.link.custom_alias.as_deref(), Some("abc12"));
        assert_eq!(row.link.tags, Some(vec!["one".into(), "two".into()]));
        let importer = b"Long URL,Short code,Domain,Title,Tags\nhttps://example.com/b,bcd,,,x\n";
        assert_eq!(parse_import(importer).unwrap().0, ImportFormat::Shlink);
        let bitly = b"Title,Bitlink,Long URL,Created,Tags\nLaunch,https://bit.ly/3xYz,https://example.com/c,2024-01-02,\"a, b\"\n";
        let (format, rows) = parse_import(bitly).unwrap();
        assert_eq!(format, ImportFormat::Bitly);
        let row = rows[0].as_ref().unwrap();
        assert_eq!(row.link.custom_alias.as_deref(), Some("3xYz"));
        assert_eq!(row.link.original_url, "https://example.com/c");
        assert_eq!(row.link.tags, Some(vec!["a".into(), "b".into()]));
        assert!(parse_import(b"url,name\nhttps://example.com,x\n").is_err());
    }

    #[test]
    fn bad_rows_fail_alone() {
        let file = format!(
            "{EXPORT_HEADER}\nok,,,https://example.com/1,,,302,,,,0,true\nbad,,,https://example.com/2,,,303,,,,0,true\nlate,,,https://example.com/3,,,302,,yesterday,,0,true\n"
        );
        let (_, rows) = parse_import(file.as_bytes()).unwrap();
        assert!(rows[0].is_ok());
        assert_eq!(rows[1].as_ref().unwrap_err().line, 3);
        assert_eq!(rows[2].as_ref().unwrap_err().code, "invalid_row");
        let crlf = file.replace('\n', "\r\n");
        let (_, rows) = parse_import(crlf.as_bytes()).unwrap();
        let lines: Vec<u64> = rows
            .iter()
            .map(|r| r.as_ref().map_or_else(|f| f.line, |r| r.line))
            .collect();
        assert_eq!(
            lines,
            [2, 3, 4],
            "lines count from the header's, whatever the line ends"
        );
    }
}
