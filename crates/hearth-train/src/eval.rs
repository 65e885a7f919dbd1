//! Task evaluation: accuracy on question-answer sets (multiple choice or exact match)
//! and the latency of each answer, so a fine-tune (or any model, local or behind an
//! OpenAI-compatible server) can be held to "accuracy ≥ X, answers within Y ms".
//!
//! Records (JSONL or a JSON array):
//! - multiple choice: `question` with `choices` (or `options`, or keys `A`..`E`) and
//!   `answer` as a letter, a 0-based index or the choice's text. The prompt lists the
//!   options as `A. ...` and asks for the letter; the first standalone option letter of
//!   the reply (or a reply naming an option's text) is its choice.
//! - exact match: `question` (or `prompt`, `input`, `instruction`, or chat `messages`)
//!   with `answer` (or `answers`, `output`, `target`, `expected`): one string or a list
//!   of accepted ones, compared after SQuAD's normalisation (lower case, no punctuation,
//!   no articles, single spaces), either equal or, in `contains` mode, contained.
//!
//! How answers are obtained is not this module's business: a [`Responder`] gives them.

use std::path::Path;
use std::time::Instant;

use hearth_tokenizer::chat::ChatMessage;
use serde_json::Value;

use crate::{Error, Result};

/// What a correct answer looks like.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    /// One of `n` options; `correct` is its index.
    Choice {
        /// Option texts.
        choices: Vec<String>,
        /// Index of the right one.
        correct: usize,
    },
    /// Any of these strings.
    Text(Vec<String>),
}

/// One question.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalItem {
    /// The conversation to answer (the question as the last user turn).
    pub messages: Vec<ChatMessage>,
    /// The right answer.
    pub expected: Expected,
}

/// How free-text answers are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMode {
    /// Normalised reply equals a normalised answer.
    Exact,
    /// A normalised answer occurs in the normalised reply (as whole words).
    Contains,
}

/// Something that answers a conversation: a local model, a server.
pub trait Responder {
    /// The reply text, or why there is none.
    fn respond(&mut self, messages: &[ChatMessage]) -> std::result::Result<String, String>;
}

/// Reads a question set (see the module doc); `system` is put first in each prompt.
pub fn load_items(path: &Path, system: Option<&str>) -> Result<Vec<EvalItem>> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    let values: Vec<Value> = if text.trim_start().starts_with('[') {
        serde_json::from_str(&text).map_err(|e| bad(path, 0, format!("not a JSON array: {e}")))?
    } else {
        let mut v = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if !line.trim().is_empty() {
                v.push(serde_json::from_str(line).map_err(|e| bad(path, i + 1, e.to_string()))?);
            }
        }
        v
    };
    if values.is_empty() {
        return Err(bad(path, 0, "no records".into()));
    }
    values
        .iter()
        .enumerate()
        .map(|(i, v)| parse_item(v, system).map_err(|w| bad(path, i + 1, w)))
        .collect()
}

fn bad(path: &Path, record: usize, what: String) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        record,
        what,
    }
}

const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// One record in either layout.
pub fn parse_item(v: &Value, system: Option<&str>) -> std::result::Result<EvalItem, String> {
    let obj = v.as_object().ok_or("expected an object")?;
    let field = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| obj.get(*k).filter(|v| !v.is_null()))
    };
    let choices: Option<Vec<String>> = match field(&["choices", "options"]) {
        Some(Value::Array(a)) => Some(a.iter().map(|c| text_of(c).unwrap_or_default()).collect()),
        Some(_) => return Err("`choices` should be a list".into()),
        None => {
            let lettered: Vec<String> = LETTERS[..5]
                .iter()
                .map_while(|&l| obj.get(&(l as char).to_string()).and_then(text_of))
                .collect();
            (lettered.len() >= 2).then_some(lettered)
        }
    };
    let answer =
        field(&["answer", "answers", "output", "target", "expected"]).ok_or("no `answer`")?;
    let mut messages = Vec::new();
    if let Some(s) = system {
        messages.push(ChatMessage::new("system", s));
    }
    let question = match field(&["messages"]) {
        Some(m) => {
            let parsed: Vec<ChatMessage> =
                serde_json::from_value(m.clone()).map_err(|e| format!("`messages`: {e}"))?;
            messages.extend(parsed);
            None
        }
        None => Some(
            field(&["question", "prompt", "input", "instruction"])
                .and_then(text_of)
                .ok_or("no `question` (or prompt, input, instruction, messages)")?,
        ),
    };
    let expected = match choices {
        Some(choices) => {
            let correct = choice_index(answer, &choices)?;
            if let Some(q) = question {
                let mut p = q;
                for (i, c) in choices.iter().enumerate() {
                    p += &format!("\n{}. {c}", LETTERS[i] as char);
                }
                p += "\nAnswer with the letter of the correct option.";
                messages.push(ChatMessage::new("user", p));
            }
            Expected::Choice { choices, correct }
        }
        None => {
            if let Some(q) = question {
                messages.push(ChatMessage::new("user", q));
            }
            let answers = match answer {
                Value::Array(a) => a.iter().filter_map(text_of).collect(),
                other => vec![text_of(other).ok_or("`answer` should be text")?],
            };
            if answers.is_empty() {
                return Err("no accepted answer".into());
            }
            Expected::Text(answers)
        }
    };
    if messages.iter().all(|m| m.role != "user") {
        return Err("no user question".into());
    }
    Ok(EvalItem { messages, expected })
}

fn choice_index(answer: &Value, choices: &[String]) -> std::result::Result<usize, String> {
    if choices.len() < 2 || choices.len() > LETTERS.len() {
        return Err(format!("{} choices (2 to 26 expected)", choices.len()));
    }
    let idx = match answer {
        Value::Number(n) => n.as_u64().map(|i| i as usize),
        Value::String(s) => {
            let t = s.trim();
            let letter = t
                .as_bytes()
                .first()
                .copied()
                .map(|b| b.to_ascii_uppercase());
            match letter {
                Some(l) if t.len() == 1 => LETTERS.iter().position(|&x| x == l),
                _ => choices.iter().position(|c| c.trim() == t),
            }
        }
        _ => None,
    };
    idx.filter(|&i| i < choices.len()).ok_or_else(|| {
        format!(
            "answer {answer} names none of the {} choices",
            choices.len()
        )
    })
}

/// SQuAD's answer normalisation: lower case, punctuation and articles removed,
/// whitespace collapsed.
pub fn normalize(s: &str) -> String {
    let lower: String = s
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c.is_whitespace() {
                c
            } else {
                ' '
            }
        })
        .collect();
    lower
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The option a reply picks: its first standalone option letter, else an option whose
/// text it contains (the longest, so "New York" beats "York").
pub fn picked_choice(reply: &str, choices: &[String]) -> Option<usize> {
    let n = choices.len();
    let chars: Vec<char> = reply.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let Some(idx) = LETTERS
            .iter()
            .position(|&l| l as char == c)
            .filter(|&x| x < n)
        else {
            continue;
        };
        let before = i == 0 || !chars[i - 1].is_alphanumeric();
        let after = chars.get(i + 1).is_none_or(|c| !c.is_alphanumeric());
        if before && after {
            return Some(idx);
        }
    }
    let r = format!(" {} ", normalize(reply));
    choices
        .iter()
        .enumerate()
        .filter(|(_, c)| !normalize(c).is_empty() && r.contains(&format!(" {} ", normalize(c))))
        .max_by_key(|(_, c)| c.len())
        .map(|(i, _)| i)
}

/// Whether `reply` answers `expected` correctly.
pub fn is_correct(expected: &Expected, reply: &str, mode: MatchMode) -> bool {
    match expected {
        Expected::Choice { choices, correct } => picked_choice(reply, choices) == Some(*correct),
        Expected::Text(answers) => {
            let r = normalize(reply);
            answers.iter().map(|a| normalize(a)).any(|a| match mode {
                MatchMode::Exact => r == a,
                MatchMode::Contains => {
                    !a.is_empty() && format!(" {r} ").contains(&format!(" {a} "))
                }
            })
        }
    }
}

/// One answered question.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The reply (empty on error).
    pub reply: String,
    /// Whether it was right.
    pub correct: bool,
    /// Wall time of the answer, milliseconds.
    pub ms: f64,
    /// Why no reply came, if none did.
    pub error: Option<String>,
}

/// Accuracy and latency over a set.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalReport {
    /// Questions asked.
    pub n: usize,
    /// Right answers.
    pub correct: usize,
    /// `correct / n`.
    pub accuracy: f64,
    /// Questions with no reply (counted wrong).
    pub errors: usize,
    /// Median answer time, ms.
    pub latency_p50_ms: f64,
    /// 95th percentile answer time, ms.
    pub latency_p95_ms: f64,
    /// Mean answer time, ms.
    pub latency_mean_ms: f64,
    /// Slowest answer, ms.
    pub latency_max_ms: f64,
}

/// The `q`-quantile (0..=1) of `sorted` values, linearly interpolated (numpy's default).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Asks every question, timing each answer; `on_item` sees each outcome as it comes.
pub fn run(
    items: &[EvalItem],
    responder: &mut dyn Responder,
    mode: MatchMode,
    on_item: &mut dyn FnMut(usize, &Outcome),
) -> (EvalReport, Vec<Outcome>) {
    let mut outcomes = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let t0 = Instant::now();
        let r = responder.respond(&item.messages);
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let o = match r {
            Ok(reply) => Outcome {
                correct: is_correct(&item.expected, &reply, mode),
                reply,
                ms,
                error: None,
            },
            Err(e) => Outcome {
                reply: String::new(),
                correct: false,
                ms,
                error: Some(e),
            },
        };
        on_item(i, &o);
        outcomes.push(o);
    }
    (summarize(&outcomes), outcomes)
}

/// The report of a list of outcomes.
pub fn summarize(outcomes: &[Outcome]) -> EvalReport {
    let n = outcomes.len();
    let correct = outcomes.iter().filter(|o| o.correct).count();
    let mut ms: Vec<f64> = outcomes.iter().map(|o| o.ms).collect();
    ms.sort_by(f64::total_cmp);
    EvalReport {
        n,
        correct,
        accuracy: if n == 0 {
            0.0
        } else {
            correct as f64 / n as f64
        },
        errors: outcomes.iter().filter(|o| o.error.is_some()).count(),
        latency_p50_ms: percentile(&ms, 0.5),
        latency_p95_ms: percentile(&ms, 0.95),
        latency_mean_ms: if n == 0 {
            0.0
        } else {
            ms.iter().sum::<f64>() / n as f64
        },
        latency_max_ms: ms.last().copied().unwrap_or(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn multiple_choice_records_and_replies() {
        let item = parse_item(
            &json!({"question": "Capital of France?", "choices": ["Rome", "Paris", "Oslo"], "answer": "B"}),
            None,
        )
        .unwrap();
        assert!(item.messages[0].content.contains("\nB. Paris\n"));
        let e = &item.expected;
        assert!(is_correct(e, "B", MatchMode::Exact));
        assert!(is_correct(e, "The answer is B.", MatchMode::Exact));
        assert!(is_correct(e, "It's Paris.", MatchMode::Exact));
        assert!(!is_correct(e, "A", MatchMode::Exact));
        assert!(!is_correct(e, "I think Rome", MatchMode::Exact));
        for answer in [json!(1), json!("Paris"), json!("b")] {
            let it = parse_item(
                &json!({"question": "q", "A": "Rome", "B": "Paris", "answer": answer}),
                Some("sys"),
            )
            .unwrap();
            assert_eq!(it.messages[0].role, "system");
            assert!(matches!(it.expected, Expected::Choice { correct: 1, .. }));
        }
        assert!(parse_item(
            &json!({"question": "q", "choices": ["a", "b"], "answer": "C"}),
            None
        )
        .is_err());
    }

    #[test]
    fn exact_and_contains_matching() {
        let item = parse_item(&json!({"prompt": "2+2?", "answers": ["four", "4"]}), None).unwrap();
        let e = &item.expected;
        assert!(is_correct(e, "Four.", MatchMode::Exact));
        assert!(!is_correct(e, "It is 4.", MatchMode::Exact));
        assert!(is_correct(e, "It is 4.", MatchMode::Contains));
        assert!(!is_correct(e, "It is 44.", MatchMode::Contains));
        assert_eq!(normalize("The  Eiffel-Tower!"), "eiffel tower");
    }

    #[test]
    fn percentiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 0.5), 3.0);
        assert!((percentile(&v, 0.95) - 4.8).abs() < 1e-12);
        assert_eq!(percentile(&[7.0], 0.95), 7.0);
        struct Echo;
        impl Responder for Echo {
            fn respond(&mut self, m: &[ChatMessage]) -> std::result::Result<String, String> {
                Ok(m.last().map(|m| m.content.clone()).unwrap_or_default())
            }
        }
        let items = vec![
            parse_item(&json!({"question": "yes", "answer": "yes"}), None).unwrap(),
            parse_item(&json!({"question": "no", "answer": "yes"}), None).unwrap(),
        ];
        let (r, _) = run(&items, &mut Echo, MatchMode::Exact, &mut |_, _| {});
        assert_eq!((r.n, r.correct, r.errors), (2, 1, 0));
        assert_eq!(r.accuracy, 0.5);
    }
}
