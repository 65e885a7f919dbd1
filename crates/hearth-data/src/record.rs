//! One JSONL record: its raw line (written back untouched), its text and its id.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::Deserializer;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::input::RawLine;

/// Which JSON fields hold a record's text and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    /// The field holding the document text (a JSON string).
    pub text: String,
    /// The field holding the document id (a string or number). Records without it get
    /// `FILE:LINE` as their id.
    pub id: String,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            text: "text".into(),
            id: "id".into(),
        }
    }
}

/// A record read from a line of input.
///
/// `raw` is the line exactly as read, so every field the stages do not touch goes out
/// byte for byte as it came in.
#[derive(Debug, Clone)]
pub struct Record {
    /// The JSON object, as read (no line ending).
    pub raw: Vec<u8>,
    /// The value of the text field.
    pub text: String,
    /// The value of the id field (numbers as their JSON text), or `FILE:LINE`.
    pub id: String,
}

impl Record {
    /// The record with `key` set to `value` (see [`Record::raw_with`]).
    pub fn with_field(&self, key: &str, value: Value) -> crate::Result<Record> {
        Ok(Record {
            raw: self.raw_with(&[(key, &value)])?,
            text: self.text.clone(),
            id: self.id.clone(),
        })
    }

    /// The raw line with `set` applied: a key the object has gets the new value in its
    /// place, a new key goes last, and every other member keeps its exact bytes.
    pub fn raw_with(&self, set: &[(&str, &Value)]) -> crate::Result<Vec<u8>> {
        let members: Members = serde_json::from_slice(&self.raw)?;
        let mut out = Vec::with_capacity(self.raw.len() + 64);
        out.push(b'{');
        let mut first = true;
        let mut sep = |out: &mut Vec<u8>| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
        };
        for (key, raw) in &members.0 {
            sep(&mut out);
            serde_json::to_writer(&mut out, key.as_ref())?;
            out.push(b':');
            match set.iter().find(|(k, _)| k == key) {
                Some((_, v)) => serde_json::to_writer(&mut out, v)?,
                None => out.extend_from_slice(raw.get().as_bytes()),
            }
        }
        for (k, v) in set {
            if !members.0.iter().any(|(key, _)| key == k) {
                sep(&mut out);
                serde_json::to_writer(&mut out, k)?;
                out.push(b':');
                serde_json::to_writer(&mut out, v)?;
            }
        }
        out.push(b'}');
        Ok(out)
    }
}

/// An object's members in order, each value as its raw JSON text.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                    out.push((k, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A line that could not be made into a record: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Malformed {
    /// The input file.
    pub file: PathBuf,
    /// The 1-based line number.
    pub line: u64,
    /// What is wrong with the line.
    pub problem: String,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.problem)
    }
}

impl Fields {
    /// Parses one raw line of `file` into a record, or says what is wrong with it.
    pub fn parse(&self, raw: RawLine, file: &Path) -> Result<Record, Malformed> {
        let (text, id) = self.text_and_id(&raw.bytes, raw.line, file)?;
        Ok(Record {
            raw: raw.bytes,
            text,
            id,
        })
    }

    /// The text and id of line `line` of `file`, whose bytes are `bytes`.
    pub fn text_and_id(
        &self,
        bytes: &[u8],
        line: u64,
        file: &Path,
    ) -> Result<(String, String), Malformed> {
        let bad = |problem: String| Malformed {
            file: file.to_path_buf(),
            line,
            problem,
        };
        let s = match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => {
                return Err(bad(format!(
                    "invalid UTF-8 at byte {} of the line",
                    e.valid_up_to()
                )))
            }
        };
        let mut de = serde_json::Deserializer::from_str(s);
        let picked = match (Picker { fields: self }).deserialize(&mut de) {
            Ok(p) => p,
            Err(e) => return Err(bad(format!("bad JSON: {e}"))),
        };
        if let Err(e) = de.end() {
            return Err(bad(format!("bad JSON: {e}")));
        }
        let text = match picked.text {
            Some(Value::String(t)) => t,
            Some(other) => {
                return Err(bad(format!(
                    "field `{}` is not a string (found {})",
                    self.text,
                    kind_of(&other)
                )))
            }
            None => return Err(bad(format!("missing text field `{}`", self.text))),
        };
        let id = match picked.id {
            Some(Value::String(s)) => s,
            Some(Value::Null) | None => format!("{}:{}", file.display(), line),
            Some(other) => other.to_string(),
        };
        Ok((text, id))
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The two fields we need out of an object; every other value is skipped unparsed.
struct Picked {
    text: Option<Value>,
    id: Option<Value>,
}

struct Picker<'a> {
    fields: &'a Fields,
}

impl<'de> DeserializeSeed<'de> for Picker<'_> {
    type Value = Picked;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Picked, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Picker<'_> {
    type Value = Picked;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Picked, A::Error> {
        let mut out = Picked {
            text: None,
            id: None,
        };
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == self.fields.text.as_str() {
                out.text = Some(map.next_value()?);
            } else if key == self.fields.id.as_str() {
                out.id = Some(map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &[u8]) -> Result<Record, Malformed> {
        let raw = RawLine {
            file: 0,
            line: 7,
            bytes: line.to_vec(),
        };
        Fields::default().parse(raw, Path::new("in.jsonl"))
    }

    #[test]
    fn picks_text_and_id_and_keeps_the_line() {
        let line = br#"{"meta":{"a":[1,2]},"text":"hello \u00e9","id":42,"z":null}"#;
        let r = parse(line).unwrap();
        assert_eq!(r.text, "hello é");
        assert_eq!(r.id, "42");
        assert_eq!(r.raw, line.to_vec());
    }

    #[test]
    fn missing_id_falls_back_to_file_and_line() {
        assert_eq!(parse(br#"{"text":"x"}"#).unwrap().id, "in.jsonl:7");
    }

    #[test]
    fn malformed_lines_name_file_line_and_problem() {
        let e = parse(b"{\"text\": \"x\"").unwrap_err();
        assert_eq!((e.line, e.file.as_path()), (7, Path::new("in.jsonl")));
        assert!(e.problem.starts_with("bad JSON"), "{}", e.problem);
        let e = parse(br#"{"body":"x"}"#).unwrap_err();
        assert_eq!(e.problem, "missing text field `text`");
        let e = parse(br#"{"text":3}"#).unwrap_err();
        assert!(e.problem.contains("not a string"), "{}", e.problem);
        let e = parse(b"{\"text\":\"a\xff\"}").unwrap_err();
        assert!(
            e.problem.contains("invalid UTF-8 at byte 10"),
            "{}",
            e.problem
        );
        let e = parse(b"[1,2]").unwrap_err();
        assert!(
            e.problem.contains("expected a JSON object"),
            "{}",
            e.problem
        );
        let e = parse(br#"{"text":"a"} trailing"#).unwrap_err();
        assert!(e.problem.contains("trailing"), "{}", e.problem);
        assert!(e.to_string().starts_with("in.jsonl:7: bad JSON"));
    }

    #[test]
    fn with_field_keeps_order_and_appends() {
        let r = parse(br#"{"z":1,"text":"t","a":2}"#).unwrap();
        let r2 = r.with_field("ppl", serde_json::json!(12.5)).unwrap();
        assert_eq!(r2.raw, br#"{"z":1,"text":"t","a":2,"ppl":12.5}"#.to_vec());
    }

    #[test]
    fn raw_with_replaces_in_place_and_keeps_other_bytes() {
        let r = parse(br#"{"z": 1.50, "text":"t\u00e9", "m":{"k" : [1, 2]}}"#).unwrap();
        let t = Value::from("new");
        let n = Value::from(3);
        let out = r.raw_with(&[("text", &t), ("n", &n)]).unwrap();
        assert_eq!(
            out,
            br#"{"z":1.50,"text":"new","m":{"k" : [1, 2]},"n":3}"#.to_vec()
        );
    }
}
