//! Credential checks for `/metrics` endpoints: one constant-time comparison.

/// Compares `given` with the secret `want` in time that depends only on
/// `want`'s length, never on where the first difference is.
///
/// ```
/// use prometheus_multiproc::integrations::auth::constant_time_eq;
/// assert!(constant_time_eq(b"Bearer s3cret", b"Bearer s3cret"));
/// assert!(!constant_time_eq(b"Bearer s3cret", b"Bearer s3crex"));
/// assert!(!constant_time_eq(b"Bearer s3cret", b"Bearer s3cre"));
/// ```
pub fn constant_time_eq(want: &[u8], given: &[u8]) -> bool {
    let mut diff = u8::from(want.len() != given.len());
    for (i, &w) in want.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(w ^ g);
    }
    std::hint::black_box(diff) == 0
}
