//! Chinese person names: a surname from the Hundred Family Surnames and one or two
//! given-name characters, only in a context that introduces a name.

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

use crate::finding::{Finding, PiiKind};

/// Common single-character surnames of the Hundred Family Surnames (public domain), the
/// hundred most frequent first; characters that are mostly function or common words
/// (和, 时, 于, 国, 文, 方, 白, ...) are left out for precision.
const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘\
蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎贺顾\
毛郝龚邵万钱严覃武戴莫孔向汤聂解蒲甘祁柴左申翟涂耿关兰焦俞樊牛施葛邢苗岳齐殷庞褚卫尤窦章鲍柳岑\
倪滕罗毕邬伍卞饶庄晏瞿芦裴荣翁荀靳鞠阮蓝闵季麻娄危童颜梅盛刁骆虞柯昝管缪宣郁单杭洪包诸钮嵇滑\
戚喻柏奚郎鲁昌凤酆费廉薛卜米贝臧计伏谈茅纪舒屈项祝席宗";

/// Two-character surnames.
const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "长孙", "宇文",
    "司徒", "夏侯", "轩辕", "端木", "南宫", "独孤", "西门", "万俟", "闻人", "呼延", "赫连",
];

/// Phrases right before a name.
const BEFORE: &[&str] = &[
    "我叫",
    "名叫",
    "叫做",
    "姓名：",
    "姓名:",
    "姓名",
    "联系人：",
    "联系人:",
    "联系人",
    "收件人：",
    "收件人:",
    "收件人",
    "收货人：",
    "收货人:",
    "收货人",
    "患者",
    "经办人：",
    "经办人",
    "签名：",
    "申请人：",
    "申请人",
    "负责人：",
    "负责人",
    "我是",
];

/// Forms of address right after a name.
const AFTER: &[&str] = &["先生", "女士", "小姐", "老师", "同学", "教授", "医生"];

/// Characters that do not occur in given names here: particles, pronouns and the start
/// of a form of address.
const NOT_GIVEN: &str = "的了是在我你他她们这那个位和与也都就不有人说要到会对先女同教医";

fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

fn is_given(c: char) -> bool {
    is_han(c) && !NOT_GIVEN.contains(c)
}

/// The surname length (in chars) at the start of `chars`, if any.
fn surname_at(chars: &[(usize, char)]) -> Option<usize> {
    if chars.len() >= 2 {
        let two: String = chars[..2].iter().map(|&(_, c)| c).collect();
        if COMPOUND_SURNAMES.contains(&two.as_str()) {
            return Some(2);
        }
    }
    chars
        .first()
        .filter(|&&(_, c)| SURNAMES.contains(c))
        .map(|_| 1)
}

/// Every cue, BEFORE's first (pattern index = position in BEFORE, then AFTER's).
fn cues() -> &'static AhoCorasick {
    static CUES: OnceLock<AhoCorasick> = OnceLock::new();
    CUES.get_or_init(|| {
        AhoCorasick::new(BEFORE.iter().chain(AFTER)).expect("the Chinese name cues build")
    })
}

pub(crate) fn find_chinese(text: &str, out: &mut Vec<Finding>) {
    // Where cues start, with the first matching BEFORE cue (in list order) and whether an
    // AFTER cue starts there too.
    let mut at: Vec<(usize, Option<usize>, bool)> = Vec::new();
    for m in cues().find_overlapping_iter(text) {
        let (b, k) = (m.start(), m.pattern().as_usize());
        let entry = match at
            .iter_mut()
            .rev()
            .take_while(|e| e.0 >= b)
            .find(|e| e.0 == b)
        {
            Some(e) => e,
            None => {
                at.push((b, None, false));
                at.last_mut().expect("just pushed")
            }
        };
        if k < BEFORE.len() {
            entry.1 = Some(entry.1.map_or(k, |j: usize| j.min(k)));
        } else {
            entry.2 = true;
        }
    }
    if at.is_empty() {
        return;
    }
    at.sort_by_key(|e| e.0);
    // Names are a few characters long: look only at the characters around each cue.
    let chars_from = |from: usize, n: usize| -> Vec<(usize, char)> {
        text[from..]
            .char_indices()
            .take(n)
            .map(|(o, c)| (from + o, c))
            .collect()
    };
    for (b, before, after) in at {
        if let Some(cue) = before.map(|k| BEFORE[k]) {
            let next = chars_from(b + cue.len(), 8);
            let next = &next[usize::from(next.first().is_some_and(|&(_, c)| c == ' '))..];
            if let Some(end) = name_after_cue(next, cue == "我是") {
                let stop = next.get(end).map_or(text.len(), |&(e, _)| e);
                out.push(Finding::new(PiiKind::Person, next[0].0..stop, 0.85));
            }
        }
        if after {
            let from = text.floor_char_boundary(b.saturating_sub(16));
            let prev: Vec<(usize, char)> = text[from..b]
                .char_indices()
                .map(|(o, c)| (from + o, c))
                .collect();
            if let Some(len) = name_before_address(&prev) {
                out.push(Finding::new(
                    PiiKind::Person,
                    prev[prev.len() - len].0..b,
                    0.8,
                ));
            }
        }
    }
}

/// The length of the name at the start of `chars` (surname and one or two given
/// characters). With `strict`, the name must end where the Han text ends.
fn name_after_cue(chars: &[(usize, char)], strict: bool) -> Option<usize> {
    let s = surname_at(chars)?;
    let given = chars[s..]
        .iter()
        .take(3)
        .take_while(|&&(_, c)| is_given(c))
        .count();
    let han_after = |n: usize| chars.get(n).is_some_and(|&(_, c)| is_han(c));
    match given {
        0 => None,
        1 | 2 if !han_after(s + given) => Some(s + given),
        _ if strict => None,
        1 => Some(s + 1),
        _ => Some(s + 2),
    }
}

/// The length of the name that ends right before a form of address: surname and two
/// given characters if that reads, else surname and one.
fn name_before_address(chars: &[(usize, char)]) -> Option<usize> {
    for given in [2, 1] {
        for sur in [2, 1] {
            let len = given + sur;
            if chars.len() < len {
                continue;
            }
            let name = &chars[chars.len() - len..];
            if surname_at(name) == Some(sur) && name[sur..].iter().all(|&(_, c)| is_given(c)) {
                return Some(len);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        find_chinese(text, &mut out);
        out.into_iter().map(|f| &text[f.span]).collect()
    }

    #[test]
    fn names_in_context() {
        assert_eq!(names("我叫王伟，今年三十岁。"), ["王伟"]);
        assert_eq!(names("姓名：欧阳修文"), ["欧阳修文"]);
        assert_eq!(names("请张小明先生到前台"), ["张小明"]);
        assert_eq!(names("联系人：徐凤兰 电话"), ["徐凤兰"]);
        assert_eq!(names("我是李明。"), ["李明"]);
    }

    #[test]
    fn no_name_without_context_or_with_a_common_phrase() {
        for text in [
            "王伟今天来了",
            "我是中国人",
            "这位先生",
            "公司的老师",
            "我叫你来的",
        ] {
            assert!(names(text).is_empty(), "{text}: {:?}", names(text));
        }
    }
}
