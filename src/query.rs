//! Query strings: `/health?runner=...&role=...` as the server reads them
//! and as `check --url` writes them. Percent-encoding is the
//! `percent-encoding` crate's; what is checked here is that every escape
//! is `%` and two hex digits (the crate passes a malformed escape through
//! as text, and a gate must not guess what a selector meant).

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved characters is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Encodes one query value.
pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// Decodes one query component: `+` is a space, `%XX` a byte. None when
/// an escape is not two hex digits or the bytes are not UTF-8.
pub fn decode(component: &str) -> Option<String> {
    let b = component.as_bytes();
    let well_formed = b.iter().enumerate().all(|(i, c)| {
        *c != b'%'
            || (b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    let spaced = component.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The `key=value` pairs of a query string, decoded; a key without `=`
/// has an empty value.
pub fn pairs(query: &str) -> Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match (decode(k), decode(v)) {
                (Some(k), Some(v)) => Ok((k, v)),
                _ => Err(format!("invalid percent-encoding in {pair:?}")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_escape_needs_two_hex_digits() {
        // Found by the `accept` fuzz target: "%+e" decoded to 0x0e.
        for bad in ["%+e", "%-1", "% a", "%4", "%zz", "%", "%ff"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
        assert_eq!(decode("%2b%2F").as_deref(), Some("+/"));
        assert_eq!(decode("a+b%20c").as_deref(), Some("a b c"));
        assert_eq!(decode("%C3%BC").as_deref(), Some("ü"));
    }

    #[test]
    fn values_round_trip() {
        for v in ["linux_runner", "a b/c?d&e=f", "ünï+%", "x.y-z~"] {
            let q = format!("runner={}", encode(v));
            assert_eq!(pairs(&q).unwrap(), [("runner".to_string(), v.to_string())]);
        }
        assert_eq!(encode("a b"), "a%20b");
        assert_eq!(encode("x.y-z_~"), "x.y-z_~");
        assert!(pairs("runner=%zz").is_err());
        assert_eq!(
            pairs("&&role&").unwrap(),
            [("role".to_string(), String::new())]
        );
    }
}
