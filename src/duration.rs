//! Durations written the way Prometheus writes them: `500ms`, `15s`, `1m30s`,
//! `6h`, `1d`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A positive duration read from and written to config as a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }

    pub fn get(self) -> Duration {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }
}

const UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Parses `1h30m`, `15s`, `250ms`. Units must appear largest first, each at
/// most once; the total must be above zero.
pub fn parse(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration {s:?}: expected a number and a unit (ms, s, m, h, d), like \"15s\" or \"1h30m\"")
    };
    if s.is_empty() {
        return Err(bad());
    }
    let mut rest = s;
    let mut total_ms: u64 = 0;
    let mut last_unit_rank = usize::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let rank = UNITS.iter().position(|(u, _)| *u == unit).ok_or_else(bad)?;
        // Largest unit first, each once: ranks must strictly decrease.
        if rank >= last_unit_rank {
            return Err(bad());
        }
        last_unit_rank = rank;
        let ms = n.checked_mul(UNITS[rank].1).ok_or_else(bad)?;
        total_ms = total_ms.checked_add(ms).ok_or_else(bad)?;
    }
    if total_ms == 0 {
        return Err(format!("invalid duration {s:?}: must be above zero"));
    }
    Ok(Duration::from_millis(total_ms))
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis() as u64;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in UNITS.iter().rev() {
            if ms >= *size {
                write!(f, "{}{}", ms / size, unit)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s).map(Dur)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map(Dur).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        for (s, ms) in [
            ("15s", 15_000),
            ("500ms", 500),
            ("1h30m", 5_400_000),
            ("6h", 21_600_000),
            ("1d2h", 93_600_000),
        ] {
            assert_eq!(parse(s), Ok(Duration::from_millis(ms)), "{s}");
            assert_eq!(Dur(Duration::from_millis(ms)).to_string(), s);
        }
    }

    #[test]
    fn rejects_garbage_zero_and_disorder() {
        for s in [
            "", "15", "s", "15x", "1.5s", "-1s", "0s", "30s1m", "1s1s", " 1s",
        ] {
            assert!(parse(s).is_err(), "{s:?} should be rejected");
        }
    }
}
