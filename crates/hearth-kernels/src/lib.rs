//! hearth-kernels (under construction).
