//! hearth-hub (under construction).
