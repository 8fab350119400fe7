//! End-to-end tests of hoplink; the test files live in `tests/tests/`.
