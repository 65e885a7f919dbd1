//! hearth-engine (under construction).
