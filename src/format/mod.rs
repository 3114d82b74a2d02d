//! The prometheus_client on-disk contract: file layout, entry keys, float formatting and file names.
//!
//! Pure functions and types, no I/O: what `inspect`-like tools and tests need
//! to read or build a file byte for byte.

pub(crate) mod key;
mod layout;
pub(crate) mod naming;

pub use key::{ParsedKey, decode_key, encode_key, float_to_go_string, python_repr};
pub use layout::*;
pub use naming::{FileKind, GaugeMode, is_valid_worker_id, parse_file_name};
