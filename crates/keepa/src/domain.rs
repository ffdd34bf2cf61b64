//! Amazon marketplaces as Keepa numbers them.

use serde::{Deserialize, Serialize};

/// An Amazon marketplace. Keepa's ids 0 and 7 are reserved and anything
/// outside 1..=12 is invalid, so neither can be constructed.
///
/// ```
/// use keepa::Domain;
/// assert_eq!(Domain::try_from(3_u8).unwrap(), Domain::De);
/// assert_eq!(Domain::De.id(), 3);
/// assert!(Domain::try_from(7_u8).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Domain {
    /// amazon.com (1)
    Com,
    /// amazon.co.uk (2)
    CoUk,
    /// amazon.de (3)
    De,
    /// amazon.fr (4)
    Fr,
    /// amazon.co.jp (5)
    CoJp,
    /// amazon.ca (6)
    Ca,
    /// amazon.it (8)
    It,
    /// amazon.es (9)
    Es,
    /// amazon.in (10)
    In,
    /// amazon.com.mx (11)
    ComMx,
    /// amazon.com.br (12)
    ComBr,
}

/// A number that is not a valid Keepa domain id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid Keepa domain {0}: expected 1-6 or 8-12 (1 = com, 2 = co.uk, 3 = de, 4 = fr, 5 = co.jp, 6 = ca, 8 = it, 9 = es, 10 = in, 11 = com.mx, 12 = com.br)")]
pub struct InvalidDomain(pub i64);

impl Domain {
    /// Every valid domain, in id order.
    pub const ALL: [Domain; 11] = [
        Domain::Com,
        Domain::CoUk,
        Domain::De,
        Domain::Fr,
        Domain::CoJp,
        Domain::Ca,
        Domain::It,
        Domain::Es,
        Domain::In,
        Domain::ComMx,
        Domain::ComBr,
    ];

    /// Keepa's numeric id.
    pub fn id(self) -> u8 {
        match self {
            Domain::Com => 1,
            Domain::CoUk => 2,
            Domain::De => 3,
            Domain::Fr => 4,
            Domain::CoJp => 5,
            Domain::Ca => 6,
            Domain::It => 8,
            Domain::Es => 9,
            Domain::In => 10,
            Domain::ComMx => 11,
            Domain::ComBr => 12,
        }
    }

    /// The marketplace's top-level domain suffix, e.g. `"co.uk"`.
    pub fn suffix(self) -> &'static str {
        match self {
            Domain::Com => "com",
            Domain::CoUk => "co.uk",
            Domain::De => "de",
            Domain::Fr => "fr",
            Domain::CoJp => "co.jp",
            Domain::Ca => "ca",
            Domain::It => "it",
            Domain::Es => "es",
            Domain::In => "in",
            Domain::ComMx => "com.mx",
            Domain::ComBr => "com.br",
        }
    }

    /// Parses an id (`"3"`) or a suffix (`"de"`, `"co.uk"`).
    pub fn parse(text: &str) -> Result<Domain, InvalidDomain> {
        let text = text.trim();
        if let Ok(n) = text.parse::<i64>() {
            return Domain::try_from(n);
        }
        let lower = text.to_ascii_lowercase();
        Domain::ALL
            .into_iter()
            .find(|d| d.suffix() == lower)
            .ok_or(InvalidDomain(-1))
    }
}

impl TryFrom<i64> for Domain {
    type Error = InvalidDomain;
    fn try_from(id: i64) -> Result<Self, Self::Error> {
        Domain::ALL
            .into_iter()
            .find(|d| i64::from(d.id()) == id)
            .ok_or(InvalidDomain(id))
    }
}

impl TryFrom<u8> for Domain {
    type Error = InvalidDomain;
    fn try_from(id: u8) -> Result<Self, Self::Error> {
        Domain::try_from(i64::from(id))
    }
}

impl From<Domain> for u8 {
    fn from(d: Domain) -> u8 {
        d.id()
    }
}

impl std::fmt::Display for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (amazon.{})", self.id(), self.suffix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reserved_ids_are_refused() {
        for d in Domain::ALL {
            assert_eq!(Domain::try_from(d.id()).unwrap(), d);
        }
        for bad in [0_i64, 7, 13, -1, 255] {
            assert_eq!(Domain::try_from(bad), Err(InvalidDomain(bad)));
        }
    }

    #[test]
    fn parses_suffixes_and_numbers() {
        assert_eq!(Domain::parse("co.uk").unwrap(), Domain::CoUk);
        assert_eq!(Domain::parse("12").unwrap(), Domain::ComBr);
        assert!(Domain::parse("7").is_err());
        assert!(Domain::parse("moon").is_err());
    }

    #[test]
    fn serde_uses_numbers() {
        assert_eq!(serde_json::to_string(&Domain::Es).unwrap(), "9");
        assert_eq!(serde_json::from_str::<Domain>("4").unwrap(), Domain::Fr);
        assert!(serde_json::from_str::<Domain>("0").is_err());
    }
}
