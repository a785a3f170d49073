//! Client country from a MaxMind GeoIP2 / GeoLite2 database (`.mmdb`), to
//! enrich spans with `geo.country.iso_code` (the OpenTelemetry geo
//! attribute) from `client.address`, which the `geo-policy` rule reads.
//!
//! ```no_run
//! use tracewarden_detect::geoip::Lookup;
//! let geo = Lookup::open(std::path::Path::new("GeoLite2-Country.mmdb"))?;
//! if let Some(country) = geo.country_of("81.2.69.160")? {
//!     assert_eq!(country.as_str().len(), 2); // e.g. "GB"
//! }
//! # Ok::<(), tracewarden_detect::geoip::GeoIpError>(())
//! ```
//!
//! Country and City databases (GeoIP2, GeoLite2, and databases in the same
//! layout such as DB-IP's) are accepted; others (ASN, ISP) are refused at
//! open. A lookup allocates nothing and returns the country where the
//! address is located, else the country where its block is registered
//! (MaxMind leaves the first out for some anycast and satellite ranges).

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{MaxMindDbError, Reader};
use serde::Deserialize;

/// Why a database cannot be used or a lookup failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GeoIpError {
    /// The file cannot be read or is not a MaxMind DB.
    #[error("cannot open GeoIP database {path}: {source}")]
    Open {
        path: PathBuf,
        source: MaxMindDbError,
    },
    /// A MaxMind DB without countries (an ASN or ISP database, say).
    #[error(
        "{path}: a `{database_type}` database has no countries (expected a GeoIP2/GeoLite2 Country or City database)"
    )]
    NotCountryDatabase {
        path: PathBuf,
        database_type: String,
    },
    /// The database is corrupt where the address led.
    #[error("GeoIP lookup of {address}: {source}")]
    Lookup {
        address: IpAddr,
        source: MaxMindDbError,
    },
}

/// An ISO 3166-1 alpha-2 country code, such as `DE`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// `text` when it is two ASCII capital letters.
    pub fn new(text: &str) -> Option<CountryCode> {
        match text.as_bytes() {
            &[a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => {
                Some(CountryCode([a, b]))
            }
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        // Two ASCII capitals, checked in `new`.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

/// The part of a Country or City record read here; the decoder skips the
/// rest (names in every language, continent, traits) without allocating.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow, default)]
    country: Option<Iso<'a>>,
    #[serde(borrow, default)]
    registered_country: Option<Iso<'a>>,
}

#[derive(Deserialize)]
struct Iso<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

/// An open GeoIP database, read into memory once; share it (`&Lookup` is
/// `Sync`) rather than opening it per thread.
pub struct Lookup {
    reader: Reader<Vec<u8>>,
}

impl fmt::Debug for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lookup")
            .field("database_type", &self.database_type())
            .finish_non_exhaustive()
    }
}

impl Lookup {
    /// Reads a `.mmdb` file.
    pub fn open(path: &Path) -> Result<Lookup, GeoIpError> {
        let bytes = std::fs::read(path).map_err(|e| GeoIpError::Open {
            path: path.to_path_buf(),
            source: MaxMindDbError::from(e),
        })?;
        Lookup::from_bytes(bytes, path)
    }

    /// A database already in memory; `path` only names it in errors.
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Lookup, GeoIpError> {
        let reader = Reader::from_source(bytes).map_err(|source| GeoIpError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let database_type = reader.metadata().database_type.to_ascii_lowercase();
        if !["country", "city", "enterprise"]
            .iter()
            .any(|kind| database_type.contains(kind))
        {
            return Err(GeoIpError::NotCountryDatabase {
                path: path.to_path_buf(),
                database_type: reader.metadata().database_type.clone(),
            });
        }
        Ok(Lookup { reader })
    }

    /// The database's `database_type` (e.g. `GeoLite2-Country`).
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// The country of `address`; `None` when the database has no record
    /// for it (private ranges, an IPv6 address in an IPv4-only database)
    /// or the record has no valid ISO code.
    pub fn country(&self, address: IpAddr) -> Result<Option<CountryCode>, GeoIpError> {
        // `::ffff:a.b.c.d` is the IPv4 client of a dual-stack socket.
        let address = address.to_canonical();
        if address.is_ipv6() && self.reader.metadata().ip_version == 4 {
            return Ok(None);
        }
        let failed = |source| GeoIpError::Lookup { address, source };
        let found = self.reader.lookup(address).map_err(failed)?;
        let Some(record) = found.decode::<Record<'_>>().map_err(failed)? else {
            return Ok(None);
        };
        let code = |iso: Option<Iso<'_>>| iso.and_then(|i| i.iso_code).and_then(CountryCode::new);
        Ok(code(record.country).or_else(|| code(record.registered_country)))
    }

    /// The country of a `client.address` value: an IP address, optionally
    /// in brackets (`[2001:db8::1]`). Host names and socket paths are not
    /// looked up (`None`).
    pub fn country_of(&self, client_address: &str) -> Result<Option<CountryCode>, GeoIpError> {
        let text = client_address
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(client_address);
        match text.parse::<IpAddr>() {
            Ok(address) => self.country(address),
            Err(_) => Ok(None),
        }
    }
}

/// The attribute [`Lookup::enrich`] sets (OpenTelemetry's geo namespace).
pub const COUNTRY_ATTRIBUTE: &str = "geo.country.iso_code";

impl Lookup {
    /// Adds `geo.country.iso_code` to a span from its `client.address`,
    /// unless the span already carries a country (from the collector's
    /// geoip processor, say) or the address is not found. Returns whether
    /// it added one. Allocates only the attribute it adds, and a copy of
    /// the span when another holder shares it (the hot tier does: the
    /// country is for rules, not stored).
    pub fn enrich(&self, record: &mut tracewarden_model::SpanRecord) -> bool {
        let span = &record.span;
        if span.attributes.iter().any(|kv| kv.key == COUNTRY_ATTRIBUTE) {
            return false;
        }
        let Some(address) = span
            .attributes
            .iter()
            .find(|kv| kv.key == "client.address")
            .and_then(|kv| kv.value.as_str())
        else {
            return false;
        };
        // A lookup error is a damaged database region: the span simply
        // gets no country (the rule then does not judge it).
        let Ok(Some(country)) = self.country_of(address) else {
            return false;
        };
        record
            .span_mut()
            .attributes
            .push(tracewarden_model::KeyValue::new(
                COUNTRY_ATTRIBUTE,
                country.as_str(),
            ));
        true
    }
}

#[cfg(test)]
mod tests;
