//! The compiled matcher agrees with the single-pattern reference (placeholder; filled below).
