//! Dataset validation (being written).
