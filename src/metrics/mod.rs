//! The metric catalog, the exposition encoder, the snapshot renderer and
//! the cached rendering `/metrics` serves.

pub mod catalog;
pub mod encode;
pub mod render;
pub mod rendered;
