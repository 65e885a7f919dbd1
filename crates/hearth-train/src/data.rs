//! Training records read from JSON Lines or a JSON array, in the layouts the common
//! SFT tools write, all turned into one conversation per record:
//!
//! - chat: `{"messages": [{"role": "user", "content": "..."}, ...]}` (content may
//!   also be a list of `{"type": "text", "text": "..."}` parts);
//! - ShareGPT: `{"conversations": [{"from": "human", "value": "..."}, ...]}`
//!   (`human`/`gpt`/`system`, or `role`/`content` inside);
//! - prompt/response and prompt/completion (strings, or lists of messages as TRL's
//!   conversational prompt-completion layout);
//! - Alpaca: `{"instruction", "input", "output"}` with optional `system` and
//!   `history` (`[[user, assistant], ...]`); instruction and input are joined by a
//!   newline as LLaMA-Factory does.

use std::path::Path;

use hearth_tokenizer::chat::ChatMessage;
use serde_json::Value;

use crate::{Error, Result};

/// One training conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The turns in order; loss falls on the `assistant` ones.
    pub messages: Vec<ChatMessage>,
}

/// Reads every record of `path`: a JSON array if the file starts with `[`, else one
/// JSON object per non-blank line.
pub fn load_examples(path: &Path) -> Result<Vec<Example>> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    parse_examples(&text, path)
}

/// Parses file contents as [`load_examples`] does (`path` names errors).
pub fn parse_examples(text: &str, path: &Path) -> Result<Vec<Example>> {
    let bad = |record: usize, what: String| Error::Data {
        path: path.to_path_buf(),
        record,
        what,
    };
    let records: Vec<(usize, Value)> = if text.trim_start().starts_with('[') {
        let arr: Vec<Value> =
            serde_json::from_str(text).map_err(|e| bad(0, format!("not a JSON array: {e}")))?;
        arr.into_iter()
            .enumerate()
            .map(|(i, v)| (i + 1, v))
            .collect()
    } else {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v = serde_json::from_str(line).map_err(|e| bad(i + 1, e.to_string()))?;
            out.push((i + 1, v));
        }
        out
    };
    if records.is_empty() {
        return Err(bad(0, "no records".into()));
    }
    records
        .into_iter()
        .map(|(n, v)| parse_record(&v).map_err(|what| bad(n, what)))
        .collect()
}

/// One record in any supported layout.
pub fn parse_record(v: &Value) -> std::result::Result<Example, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("expected an object, found {}", kind(v)))?;
    let messages = if let Some(m) = obj.get("messages") {
        messages(m)?
    } else if let Some(c) = obj.get("conversations") {
        messages(c)?
    } else if let Some(out) = obj
        .get("output")
        .filter(|_| obj.contains_key("instruction"))
    {
        alpaca(obj, out)?
    } else if let Some(p) = obj.get("prompt") {
        let answer = obj
            .get("response")
            .or_else(|| obj.get("completion"))
            .ok_or("a `prompt` needs a `response` or `completion`")?;
        let mut m = turns(p, "user")?;
        m.extend(turns(answer, "assistant")?);
        m
    } else {
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        return Err(format!(
            "no known layout (messages, conversations, prompt/response, prompt/completion, instruction/output) among keys {keys:?}"
        ));
    };
    if !messages.iter().any(|m| m.role == "assistant") {
        return Err("no assistant turn to learn from".into());
    }
    Ok(Example { messages })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A string (one message of `role`) or a list of messages.
fn turns(v: &Value, role: &str) -> std::result::Result<Vec<ChatMessage>, String> {
    match v {
        Value::String(s) => Ok(vec![ChatMessage::new(role, s.clone())]),
        Value::Array(_) => messages(v),
        other => Err(format!("expected text or messages, found {}", kind(other))),
    }
}

fn messages(v: &Value) -> std::result::Result<Vec<ChatMessage>, String> {
    let arr = v
        .as_array()
        .ok_or_else(|| format!("messages should be an array, found {}", kind(v)))?;
    arr.iter()
        .enumerate()
        .map(|(i, m)| message(m).map_err(|e| format!("message {}: {e}", i + 1)))
        .collect()
}

fn message(m: &Value) -> std::result::Result<ChatMessage, String> {
    let role = m
        .get("role")
        .or_else(|| m.get("from"))
        .and_then(Value::as_str)
        .ok_or("no `role` (or ShareGPT `from`)")?;
    let role = match role {
        "human" | "user" => "user",
        "gpt" | "assistant" | "model" => "assistant",
        "system" => "system",
        other => other,
    };
    let content = m
        .get("content")
        .or_else(|| m.get("value"))
        .ok_or("no `content` (or ShareGPT `value`)")?;
    Ok(ChatMessage::new(role, content_text(content)?))
}

/// A content string, or the text parts of a content list joined.
fn content_text(v: &Value) -> std::result::Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => Ok(parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("")),
        other => Err(format!("content should be text, found {}", kind(other))),
    }
}

fn alpaca(
    obj: &serde_json::Map<String, Value>,
    output: &Value,
) -> std::result::Result<Vec<ChatMessage>, String> {
    let text = |k: &str| -> std::result::Result<String, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("`{k}` should be text, found {}", kind(other))),
        }
    };
    let mut m = Vec::new();
    let system = text("system")?;
    if !system.is_empty() {
        m.push(ChatMessage::new("system", system));
    }
    if let Some(Value::Array(history)) = obj.get("history") {
        for pair in history {
            match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(q), Value::String(a)]) => {
                    m.push(ChatMessage::new("user", q.clone()));
                    m.push(ChatMessage::new("assistant", a.clone()));
                }
                _ => return Err("`history` should hold [user, assistant] pairs".into()),
            }
        }
    }
    let (instruction, input) = (text("instruction")?, text("input")?);
    let prompt = match (instruction.is_empty(), input.is_empty()) {
        (_, true) => instruction,
        (true, false) => input,
        (false, false) => format!("{instruction}\n{input}"),
    };
    m.push(ChatMessage::new("user", prompt));
    m.push(ChatMessage::new(
        "assistant",
        output.as_str().ok_or("`output` should be text")?,
    ));
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roles(e: &Example) -> Vec<(&str, &str)> {
        e.messages
            .iter()
            .map(|m| (m.role.as_str(), m.content.as_str()))
            .collect()
    }

    #[test]
    fn every_layout_becomes_a_conversation() {
        let cases = [
            json!({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}),
            json!({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}),
            json!({"prompt": "q", "response": "a"}),
            json!({"prompt": "q", "completion": "a"}),
            json!({"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": [{"type": "text", "text": "a"}]}]}),
            json!({"instruction": "q", "input": "", "output": "a"}),
        ];
        for c in cases {
            let e = parse_record(&c).unwrap();
            assert_eq!(roles(&e), vec![("user", "q"), ("assistant", "a")], "{c}");
        }
    }

    #[test]
    fn alpaca_joins_input_and_keeps_history() {
        let e = parse_record(&json!({
            "instruction": "Translate", "input": "chat", "output": "cat",
            "system": "s", "history": [["hi", "hello"]]
        }))
        .unwrap();
        assert_eq!(
            roles(&e),
            vec![
                ("system", "s"),
                ("user", "hi"),
                ("assistant", "hello"),
                ("user", "Translate\nchat"),
                ("assistant", "cat")
            ]
        );
    }

    #[test]
    fn arrays_and_lines_both_parse_and_errors_name_the_record() {
        let p = Path::new("d.jsonl");
        let lines = "{\"prompt\": \"q\", \"response\": \"a\"}\n\n{\"prompt\": \"q2\", \"response\": \"a2\"}\n";
        assert_eq!(parse_examples(lines, p).unwrap().len(), 2);
        let arr = "[{\"instruction\": \"q\", \"output\": \"a\"}]";
        assert_eq!(parse_examples(arr, p).unwrap().len(), 1);
        let err = parse_examples(
            "{\"prompt\": \"q\", \"response\": \"a\"}\n{\"text\": \"x\"}\n",
            p,
        )
        .unwrap_err();
        assert!(err.to_string().contains("record 2"), "{err}");
        let err = parse_examples(
            "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}]}",
            p,
        )
        .unwrap_err();
        assert!(err.to_string().contains("no assistant"), "{err}");
    }
}
