//! hearth-tokenizer (under construction).
