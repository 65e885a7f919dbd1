//! Code point classification and the GPT-2 byte <-> unicode mapping, as llama.cpp's
//! `unicode.cpp` does them (its own category tables, not the Rust standard library's).

use crate::unicode_data::RANGES;

/// A code point's general category, as llama.cpp's flag table groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Category {
    /// Past the last code point (llama.cpp's all-zero flags).
    None,
    /// Unassigned.
    Undefined,
    /// `\p{N}`.
    Number,
    /// `\p{L}`.
    Letter,
    /// `\p{Z}`.
    Separator,
    /// `\p{M}`.
    Mark,
    /// `\p{P}`.
    Punctuation,
    /// `\p{S}`.
    Symbol,
    /// `\p{C}`.
    Control,
}

/// Category plus llama.cpp's whitespace flag for one code point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flags {
    pub cat: Category,
    pub ws: bool,
}

impl Flags {
    /// Flags of a position outside the text (llama.cpp's `unicode_cpt_flags{}`): all clear.
    pub const OUT: Flags = Flags {
        cat: Category::None,
        ws: false,
    };

    pub fn letter(self) -> bool {
        self.cat == Category::Letter
    }
    pub fn number(self) -> bool {
        self.cat == Category::Number
    }
    pub fn mark(self) -> bool {
        self.cat == Category::Mark
    }
    /// llama.cpp's `as_uint() != 0`: any flag set.
    pub fn any(self) -> bool {
        self.cat != Category::None || self.ws
    }
}

/// llama.cpp's whitespace set (`unicode_set_whitespace`).
pub(crate) fn is_whitespace(cpt: u32) -> bool {
    matches!(
        cpt,
        0x09..=0x0D
            | 0x20
            | 0x85
            | 0xA0
            | 0x1680
            | 0x2000..=0x200A
            | 0x2028
            | 0x2029
            | 0x202F
            | 0x205F
            | 0x3000
    )
}

/// The category of `cpt` from llama.cpp's range table.
pub(crate) fn category(cpt: u32) -> Category {
    if cpt >= 0x110000 {
        return Category::Undefined;
    }
    let i = RANGES.partition_point(|&(start, _)| start <= cpt);
    let code = if i == 0 { 0 } else { RANGES[i - 1].1 };
    match code {
        1 => Category::Undefined,
        2 => Category::Number,
        3 => Category::Letter,
        4 => Category::Separator,
        5 => Category::Mark,
        6 => Category::Punctuation,
        7 => Category::Symbol,
        8 => Category::Control,
        _ => Category::None,
    }
}

/// Flags of one code point (llama.cpp's `unicode_cpt_flags_from_cpt`).
pub(crate) fn flags(cpt: u32) -> Flags {
    Flags {
        cat: category(cpt),
        ws: is_whitespace(cpt),
    }
}

/// ASCII-only lowercase: the only cases llama.cpp's `unicode_tolower` can turn into the
/// ASCII letters the contraction rules compare against (besides U+0130 -> `i` and
/// U+212A -> `k`, which no rule tests for).
pub(crate) fn to_lower_ascii(cpt: u32) -> u32 {
    if (0x41..=0x5A).contains(&cpt) {
        cpt + 0x20
    } else {
        cpt
    }
}

const fn byte_is_direct(b: u32) -> bool {
    (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
}

const fn make_byte_to_cpt() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut n = 0;
    let mut b = 0;
    while b < 256 {
        if byte_is_direct(b) {
            table[b as usize] = b;
        } else {
            table[b as usize] = 256 + n;
            n += 1;
        }
        b += 1;
    }
    table
}

const fn make_cpt_to_byte() -> [i16; 324] {
    let mut table = [-1i16; 324];
    let mut b = 0;
    while b < 256 {
        table[BYTE_TO_CPT[b] as usize] = b as i16;
        b += 1;
    }
    table
}

/// The GPT-2 byte-to-unicode table: byte `b` is written as code point `BYTE_TO_CPT[b]`.
pub(crate) static BYTE_TO_CPT: [u32; 256] = make_byte_to_cpt();
static CPT_TO_BYTE: [i16; 324] = make_cpt_to_byte();

/// Inverse of [`BYTE_TO_CPT`]: the byte a code point stands for, if any.
pub(crate) fn cpt_to_byte(cpt: u32) -> Option<u8> {
    match CPT_TO_BYTE.get(cpt as usize) {
        Some(&b) if b >= 0 => Some(b as u8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        assert_eq!(category('a' as u32), Category::Letter);
        assert_eq!(category('5' as u32), Category::Number);
        assert_eq!(category(' ' as u32), Category::Separator);
        assert_eq!(category('\n' as u32), Category::Control);
        assert_eq!(category('!' as u32), Category::Punctuation);
        assert_eq!(category('$' as u32), Category::Symbol);
        assert_eq!(category('é' as u32), Category::Letter);
        assert_eq!(category('½' as u32), Category::Number);
        assert_eq!(category(0x301), Category::Mark);
        assert!(flags(0x3000).ws);
    }

    #[test]
    fn byte_table_round_trips() {
        let t = BYTE_TO_CPT;
        assert_eq!(t[b' ' as usize], 0x120); // 'Ġ'
        assert_eq!(t[b'\n' as usize], 0x10A); // 'Ċ'
        for b in 0..=255u8 {
            assert_eq!(cpt_to_byte(t[b as usize]), Some(b));
        }
    }
}
