//! hearth-model (under construction).
