//! `hoplink` server binary (the HTTP API comes with its own issue).
fn main() {}
