//! The encoded exposition of the latest snapshot version, as `/metrics`
//! serves it: the renderer sets it when the store changes, a scrape takes
//! a pointer to it. The gzip body is computed once per version, on the
//! first request that asks for it.

use bytes::Bytes;
use std::sync::{Arc, OnceLock, RwLock};

/// The encoded exposition of one snapshot version.
pub struct Rendered {
    pub version: u64,
    pub text: Bytes,
    pub openmetrics: Bytes,
    text_gzip: OnceLock<Bytes>,
    openmetrics_gzip: OnceLock<Bytes>,
}

impl Rendered {
    pub fn new(version: u64, text: String, openmetrics: String) -> Self {
        Rendered {
            version,
            text: Bytes::from(text),
            openmetrics: Bytes::from(openmetrics),
            text_gzip: OnceLock::new(),
            openmetrics_gzip: OnceLock::new(),
        }
    }

    /// The gzip-compressed body, computed once per version on first request.
    pub fn gzip(&self, openmetrics: bool) -> Bytes {
        let (cell, body) = if openmetrics {
            (&self.openmetrics_gzip, &self.openmetrics)
        } else {
            (&self.text_gzip, &self.text)
        };
        cell.get_or_init(|| gzip(body)).clone()
    }
}

fn gzip(body: &[u8]) -> Bytes {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(body);
    Bytes::from(enc.finish().unwrap_or_default())
}

/// The latest rendering, shared by the renderer and the HTTP server.
pub struct Latest(RwLock<Arc<Rendered>>);

impl Default for Latest {
    fn default() -> Self {
        Latest(RwLock::new(Arc::new(Rendered::new(
            0,
            String::new(),
            String::new(),
        ))))
    }
}

impl Latest {
    /// A pointer copy: no I/O, no encoding.
    pub fn get(&self) -> Arc<Rendered> {
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn set(&self, r: Rendered) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(r);
    }
}
