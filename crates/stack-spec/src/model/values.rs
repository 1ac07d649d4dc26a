//! Value types with units: durations and byte counts are numbers in Rust and
//! print the way `docker compose config` prints them.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::units::{format_duration, parse_bytes, parse_duration};

/// A duration; prints as Go does (`1m30s`), reads Compose duration strings
/// or a number of nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Nanos(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Nanos(n) => Ok(Self(Duration::from_nanos(n))),
            Raw::Text(t) => parse_duration(&t)
                .map(Self)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl JsonSchema for GoDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration such as 1m30s, 1.5s or 100ms",
            "pattern": "^((\\d+(\\.\\d+)?)(ns|us|µs|ms|s|m|h|d|w))+$|^0$"
        })
    }
}

/// A byte count (`-1` means unlimited where Docker allows it). Reads
/// `512m`, `1.5g`, `2GiB`, `1024`; prints as a number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct ByteSize(pub i64);

impl ByteSize {
    pub fn bytes(self) -> i64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Float(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(Self(n)),
            Raw::Float(f) => Ok(Self(f as i64)),
            Raw::Text(t) => parse_bytes(&t).map(Self).map_err(serde::de::Error::custom),
        }
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "integer",
            "description": "A number of bytes"
        })
    }
}

/// Serde helpers that accept the string forms interpolation produces
/// (`"true"`, `"3"`, `"0.5"`) wherever Compose takes a boolean or number.
pub mod flex {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Bool(bool),
        Int(i64),
        Float(f64),
        Text(String),
    }

    fn to_bool<E: serde::de::Error>(s: Scalar) -> Result<bool, E> {
        match s {
            Scalar::Bool(b) => Ok(b),
            Scalar::Text(t) => match t.to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "on" | "1" => Ok(true),
                "false" | "no" | "n" | "off" | "0" | "" => Ok(false),
                _ => Err(E::custom(format!("expected a boolean, found {t:?}"))),
            },
            Scalar::Int(i) => Ok(i != 0),
            Scalar::Float(_) => Err(E::custom("expected a boolean, found a number")),
        }
    }

    fn to_i64<E: serde::de::Error>(s: Scalar) -> Result<i64, E> {
        match s {
            Scalar::Int(i) => Ok(i),
            Scalar::Float(f) if f.fract() == 0.0 => Ok(f as i64),
            Scalar::Text(t) => t
                .trim()
                .parse()
                .map_err(|_| E::custom(format!("expected an integer, found {t:?}"))),
            _ => Err(E::custom("expected an integer")),
        }
    }

    fn to_f64<E: serde::de::Error>(s: Scalar) -> Result<f64, E> {
        match s {
            Scalar::Int(i) => Ok(i as f64),
            Scalar::Float(f) => Ok(f),
            Scalar::Text(t) => t
                .trim()
                .parse()
                .map_err(|_| E::custom(format!("expected a number, found {t:?}"))),
            Scalar::Bool(_) => Err(E::custom("expected a number, found a boolean")),
        }
    }

    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        to_bool(Scalar::deserialize(d)?)
    }

    pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Option::<Scalar>::deserialize(d)?.map(to_bool).transpose()
    }

    pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        Option::<Scalar>::deserialize(d)?.map(to_i64).transpose()
    }

    pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        Option::<Scalar>::deserialize(d)?
            .map(to_i64)
            .transpose()?
            .map(|v| {
                u32::try_from(v)
                    .map_err(|_| serde::de::Error::custom(format!("expected 0 or more, found {v}")))
            })
            .transpose()
    }

    pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<Scalar>::deserialize(d)?.map(to_f64).transpose()
    }
}
