//! Training configuration and estimates (being written).
