//! Reserved for suites that need no `hoplink` binary. The HTTP suites live in
//! `crates/server/tests` (`e2e`, `scale_out`, `faults`, `cli`), where Cargo hands them the
//! binary they start as processes.
