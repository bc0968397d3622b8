//! Unit tests of the flow engine with in-memory effects.
