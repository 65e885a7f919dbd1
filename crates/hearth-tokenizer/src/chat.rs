//! Chat templates: turning a list of messages into the prompt text a model was
//! trained on.
//!
//! GGUF files carry Hugging Face's Jinja2 template in `tokenizer.chat_template`; it is
//! rendered with `minijinja`, set up like HF's `apply_chat_template` environment:
//! `trim_blocks` and `lstrip_blocks` on, Python string/dict methods (`.strip()`,
//! `.startswith()`, `.items()`, ...) through `minijinja-contrib`'s pycompat layer, a
//! Python-compatible `tojson`, and the helpers HF provides: `raise_exception(msg)`
//! and `strftime_now(format)`. Templates see the variables `messages`,
//! `add_generation_prompt`, `bos_token` and `eos_token`.
//!
//! For families whose files carry no template (Gemma) there are built-ins, and ChatML
//! as a last resort.
//!
//! Like HF, the rendered text includes whatever special tokens the template writes
//! (often a leading `bos_token`), so tokenize it without adding another BOS.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::value::{Kwargs, Value};
use minijinja::{context, Environment, ErrorKind};

/// Errors from compiling or rendering a chat template.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// The template source is not valid Jinja.
    #[error("chat template does not compile: {0}")]
    Compile(String),
    /// The template called `raise_exception(message)`, typically rejecting the
    /// conversation (wrong role order, unsupported role, ...).
    #[error("chat template rejected the conversation: {0}")]
    Raised(String),
    /// Rendering failed for another reason (bad operation, wrong types, ...).
    #[error("chat template failed to render: {0}")]
    Render(String),
}

/// One message of a conversation.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ChatMessage {
    /// Who speaks: usually `system`, `user` or `assistant`.
    pub role: String,
    /// What they say.
    pub content: String,
}

impl ChatMessage {
    /// A message with the given role and content.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A compiled chat template, ready to render conversations. Cheap to share:
/// `Send + Sync`, and rendering takes `&self`.
#[derive(Clone)]
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
}

impl fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

const TEMPLATE_NAME: &str = "chat_template";

/// Gemma's turn format (Gemma 3's official template, text-only): system messages are
/// merged into the first user turn, `assistant` is rendered as `model`, contents are
/// trimmed, and roles must alternate.
const GEMMA_TEMPLATE: &str = r#"{{ bos_token }}
{%- if messages and messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {{- message['content'] | trim }}
    {{- '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{ '<start_of_turn>model\n' }}
{%- endif -%}
"#;

/// ChatML, the fallback when nothing better is known.
const CHATML_TEMPLATE: &str = "{% for message in messages %}\
{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}\
{% endfor %}\
{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// Marker source attached to the error `raise_exception` returns, so rendering can
/// tell a deliberate rejection from other failures.
#[derive(Debug)]
struct Raised(String);

impl fmt::Display for Raised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

impl ChatTemplate {
    /// Compiles a template from its source; `bos_token` and `eos_token` are the texts
    /// exposed to the template under those names.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, ChatError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_global("bos_token", bos_token);
        env.add_global("eos_token", eos_token);
        env.add_template_owned(TEMPLATE_NAME, source.to_owned())
            .map_err(|e| ChatError::Compile(e.to_string()))?;
        Ok(ChatTemplate {
            env,
            source: source.to_owned(),
        })
    }

    /// The built-in template for an architecture (`general.architecture`) whose
    /// files carry none: the Gemma family (`gemma`, `gemma2`, `gemma3`, `gemma3n`).
    /// `None` for other architectures.
    pub fn builtin(architecture: &str, bos_token: &str, eos_token: &str) -> Option<Self> {
        let source = match architecture {
            "gemma" | "gemma2" | "gemma3" | "gemma3n" => GEMMA_TEMPLATE,
            _ => return None,
        };
        // Built-in sources are constants covered by tests; compiling them cannot fail.
        ChatTemplate::new(source, bos_token, eos_token).ok()
    }

    /// The file's template if it has a non-blank one, else the built-in for the
    /// architecture, else ChatML.
    pub fn for_model(
        file_template: Option<&str>,
        architecture: &str,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<Self, ChatError> {
        if let Some(source) = file_template.filter(|s| !s.trim().is_empty()) {
            return ChatTemplate::new(source, bos_token, eos_token);
        }
        if let Some(t) = ChatTemplate::builtin(architecture, bos_token, eos_token) {
            return Ok(t);
        }
        ChatTemplate::new(CHATML_TEMPLATE, bos_token, eos_token)
    }

    /// ChatML (`<|im_start|>role\ncontent<|im_end|>\n` per message).
    pub fn chatml(bos_token: &str, eos_token: &str) -> Result<Self, ChatError> {
        ChatTemplate::new(CHATML_TEMPLATE, bos_token, eos_token)
    }

    /// Renders a conversation; with `add_generation_prompt`, ends with the header of
    /// the assistant's turn so the model continues as the assistant.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, ChatError> {
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| ChatError::Compile(e.to_string()))?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
            })
            .map_err(render_error)
    }

    /// The template's Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }
}

fn render_error(err: minijinja::Error) -> ChatError {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<Raised>() {
            return ChatError::Raised(r.0.clone());
        }
        cur = e.source();
    }
    ChatError::Render(err.to_string())
}

/// `raise_exception(message)`: aborts rendering with `message`.
fn raise_exception(message: String) -> Result<Value, minijinja::Error> {
    Err(
        minijinja::Error::new(ErrorKind::InvalidOperation, message.clone())
            .with_source(Raised(message)),
    )
}

/// `strftime_now(format)`: the current UTC time formatted like Python's `strftime`.
fn strftime_now(format: String) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    strftime(&format, secs)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Civil date (year, month 1..=12, day 1..=31) of a day count since 1970-01-01
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats Unix time `secs` (UTC) with the common Python `strftime` directives;
/// unknown directives are copied through unchanged.
fn strftime(format: &str, secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (tod / 3600, tod % 3600 / 60, tod % 60);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday.
    let month_name = MONTHS[(month as usize + 11) % 12];
    let day_of_year = days - days_from_civil(year, 1, 1) + 1;
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(d) = chars.next() else {
            out.push('%');
            break;
        };
        let s = match d {
            'Y' => year.to_string(),
            'y' => format!("{:02}", year.rem_euclid(100)),
            'm' => format!("{month:02}"),
            'd' => format!("{day:02}"),
            'e' => format!("{day:2}"),
            '-' => match chars.next() {
                Some('d') => day.to_string(),
                Some('m') => month.to_string(),
                Some('H') => hour.to_string(),
                Some(other) => format!("%-{other}"),
                None => "%-".to_string(),
            },
            'H' => format!("{hour:02}"),
            'I' => format!("{:02}", (hour + 11) % 12 + 1),
            'p' => (if hour < 12 { "AM" } else { "PM" }).to_string(),
            'M' => format!("{minute:02}"),
            'S' => format!("{second:02}"),
            'j' => format!("{day_of_year:03}"),
            'B' => month_name.to_string(),
            'b' | 'h' => month_name[..3].to_string(),
            'A' => WEEKDAYS[weekday].to_string(),
            'a' => WEEKDAYS[weekday][..3].to_string(),
            'Z' => "UTC".to_string(),
            'z' => "+0000".to_string(),
            '%' => "%".to_string(),
            other => format!("%{other}"),
        };
        out.push_str(&s);
    }
    out
}

/// Days since 1970-01-01 of a civil date (inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `tojson` as HF's environment defines it: Python's `json.dumps` with
/// `ensure_ascii=False` (so no HTML escaping, unlike minijinja's own), the default
/// `", "` / `": "` separators, and optional `indent`.
fn tojson(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, minijinja::Error> {
    let indent = match indent {
        Some(v) => Some(v),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() || v.is_undefined() => None,
        Some(v) => Some(usize::try_from(v)?),
    };
    let separators: Option<Value> = kwargs.get("separators")?;
    // sort_keys is accepted; key order then follows the value's own map order.
    let _: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let (item_sep, key_sep) = match separators {
        Some(seps) if !seps.is_none() && !seps.is_undefined() => {
            let a = seps.get_item_by_index(0)?;
            let b = seps.get_item_by_index(1)?;
            match (a.as_str(), b.as_str()) {
                (Some(a), Some(b)) => (a.to_owned(), b.to_owned()),
                _ => {
                    return Err(minijinja::Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: separators must be two strings",
                    ))
                }
            }
        }
        _ if indent.is_some() => (",".to_owned(), ": ".to_owned()),
        _ => (", ".to_owned(), ": ".to_owned()),
    };
    let json = serde_json::to_value(value).map_err(|e| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            "tojson: cannot serialize value",
        )
        .with_source(e)
    })?;
    let mut out = String::new();
    write_json(&mut out, &json, indent, &item_sep, &key_sep, 0);
    Ok(Value::from_safe_string(out))
}

fn write_json(
    out: &mut String,
    v: &serde_json::Value,
    indent: Option<usize>,
    item_sep: &str,
    key_sep: &str,
    level: usize,
) {
    use serde_json::Value as J;
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Number(n) => out.push_str(&n.to_string()),
        J::String(s) => write_json_string(out, s),
        J::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                write_json(out, item, indent, item_sep, key_sep, level + 1);
            }
            newline(out, level);
            out.push(']');
        }
        J::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                write_json_string(out, k);
                out.push_str(key_sep);
                write_json(out, item, indent, item_sep, key_sep, level + 1);
            }
            newline(out, level);
            out.push('}');
        }
    }
}

/// A JSON string literal escaped as Python's `json.dumps(ensure_ascii=False)` does.
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_known_dates() {
        // 2024-02-29 13:05:09 UTC, a Thursday.
        let t = 1_709_211_909;
        assert_eq!(strftime("%Y-%m-%d %H:%M:%S", t), "2024-02-29 13:05:09");
        assert_eq!(strftime("%d %b %Y", t), "29 Feb 2024");
        assert_eq!(
            strftime("%A %B %-d, %y %I%p %j %%", t),
            "Thursday February 29, 24 01PM 060 %"
        );
        assert_eq!(strftime("%Y-%m-%d %a", 0), "1970-01-01 Thu");
        assert_eq!(strftime("%Y-%m-%d", 951_782_400), "2000-02-29");
        assert_eq!(strftime("%Q", 0), "%Q");
        assert_eq!(strftime("50%", 0), "50%");
    }

    #[test]
    fn tojson_like_python() {
        let t = ChatTemplate::new(
            "{{ x | tojson }}|{{ x | tojson(indent=2) }}|{{ s | tojson }}",
            "",
            "",
        )
        .unwrap();
        let env = &t.env;
        let out = env
            .get_template(TEMPLATE_NAME)
            .unwrap()
            .render(context! { x => vec![1, 2], s => "<é\"\n>" })
            .unwrap();
        assert_eq!(out, "[1, 2]|[\n  1,\n  2\n]|\"<é\\\"\\n>\"");
    }
}
