//! The metric catalog, the exposition encoder and the snapshot renderer.

pub mod catalog;
pub mod encode;
pub mod render;
