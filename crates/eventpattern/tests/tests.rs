//! Integration tests of the event-pattern crate: the table of pattern cases and the matcher's
//! agreement with the single-pattern reference.

mod agreement;
mod table;
