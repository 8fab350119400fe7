//! Countries of client addresses from a MaxMind DB file (GeoLite2 or GeoIP2, country or
//! city edition), for `country` redirect rules and the countries of clicks.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::net::IpAddr;
use std::path::Path;

/// A MaxMind DB file held in memory, with a cache of recent answers: a redirect that
/// needs a country asks about one address, and the same addresses come back.
pub struct GeoIp {
    reader: maxminddb::Reader<Vec<u8>>,
    recent: quick_cache::sync::Cache<
        IpAddr,
        Option<[u8; 2]>,
        quick_cache::UnitWeighter,
        foldhash::fast::RandomState,
    >,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("database_type", &self.reader.metadata.database_type)
            .finish_non_exhaustive()
    }
}

/// Addresses whose answers are remembered.
const RECENT: usize = 65_536;

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    country: Option<Place<'a>>,
    #[serde(borrow)]
    registered_country: Option<Place<'a>>,
}

#[derive(Deserialize)]
struct Place<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
}

impl GeoIp {
    /// Reads a `.mmdb` file; an error names the file and what is wrong with it.
    pub fn open(path: impl AsRef<Path>) -> Result<GeoIp> {
        let path = path.as_ref();
        let reader = maxminddb::Reader::open_readfile(path).map_err(|e| {
            Error::invalid(
                "geoip_db",
                "invalid_config",
                format!("{}: {e}", path.display()),
            )
        })?;
        Self::from_reader(reader)
    }

    /// A database from the bytes of a `.mmdb` file.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GeoIp> {
        let reader = maxminddb::Reader::from_source(bytes)
            .map_err(|e| Error::invalid("geoip_db", "invalid_config", e.to_string()))?;
        Self::from_reader(reader)
    }

    fn from_reader(reader: maxminddb::Reader<Vec<u8>>) -> Result<GeoIp> {
        let kind = &reader.metadata.database_type;
        if !(kind.contains("Country") || kind.contains("City")) {
            return Err(Error::invalid(
                "geoip_db",
                "invalid_config",
                format!("a {kind} database has no countries (use a country or city edition)"),
            ));
        }
        Ok(GeoIp {
            reader,
            recent: quick_cache::sync::Cache::with(
                RECENT,
                RECENT as u64,
                quick_cache::UnitWeighter,
                foldhash::fast::RandomState::default(),
                quick_cache::sync::DefaultLifecycle::default(),
            ),
        })
    }

    /// The ISO 3166-1 alpha-2 code of the country of `ip` (where it is, else where its
    /// network is registered); `None` when the database does not know it.
    pub fn country(&self, ip: IpAddr) -> Option<[u8; 2]> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if let Some(known) = self.recent.get(&ip) {
            return known;
        }
        let found = self.look_up(ip);
        self.recent.insert(ip, found);
        found
    }

    fn look_up(&self, ip: IpAddr) -> Option<[u8; 2]> {
        let result = self.reader.lookup(ip).ok()?;
        let record: Record<'_> = result.decode().ok()??;
        let code = record
            .country
            .and_then(|c| c.iso_code)
            .or_else(|| record.registered_country.and_then(|c| c.iso_code))?;
        match code.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
            }
            _ => None,
        }
    }
}

/// A country code as text.
pub(crate) fn code_str(code: &[u8; 2]) -> &str {
    std::str::from_utf8(code).unwrap_or("??")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(name: &str) -> GeoIp {
        GeoIp::open(format!(
            "{}/tests/data/geoip/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("test database")
    }

    #[test]
    fn finds_countries_in_both_editions() {
        for edition in ["GeoLite2-Country-Test.mmdb", "GeoLite2-City-Test.mmdb"] {
            let geo = db(edition);
            for (ip, country) in [
                ("81.2.69.160", "GB"),
                ("216.160.83.56", "US"),
                ("89.160.20.128", "SE"),
                ("2001:218::1", "JP"),
                ("::ffff:81.2.69.160", "GB"),
            ] {
                let found = geo.country(ip.parse().unwrap());
                assert_eq!(
                    found.as_ref().map(code_str),
                    Some(country),
                    "{edition} {ip}"
                );
                // Asked again: from the cache, the same.
                assert_eq!(
                    geo.country(ip.parse().unwrap()).as_ref().map(code_str),
                    Some(country)
                );
            }
            assert_eq!(geo.country("127.0.0.1".parse().unwrap()), None);
            assert_eq!(geo.country("10.1.2.3".parse().unwrap()), None);
        }
    }

    #[test]
    fn refuses_files_that_are_no_database() {
        let e = GeoIp::from_bytes(b"not a database".to_vec()).unwrap_err();
        assert!(matches!(e, Error::Invalid { .. }), "{e}");
        let e = GeoIp::open("/nonexistent/GeoLite2-Country.mmdb").unwrap_err();
        assert!(
            e.to_string().contains("/nonexistent/GeoLite2-Country.mmdb"),
            "{e}"
        );
    }
}
