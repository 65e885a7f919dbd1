//! Chat template rendering: a real model's template, the Gemma built-in, failures.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use hearth_tokenizer::chat::{ChatError, ChatMessage, ChatTemplate};

fn msg(role: &str, content: &str) -> ChatMessage {
    ChatMessage::new(role, content)
}

fn models_dir() -> PathBuf {
    match std::env::var_os("HEARTH_CACHE") {
        Some(dir) => PathBuf::from(dir).join("models"),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/hearth/models")
        }
    }
}

/// The chat template stored in a cached model file, or `None` (with a loud message)
/// when the file is not there.
fn file_template(file: &str) -> Option<String> {
    let path = models_dir().join(file);
    if !path.exists() {
        eprintln!(
            "\n*** SKIPPED: {} not found; set HEARTH_CACHE or download the model ***\n",
            path.display()
        );
        return None;
    }
    let gguf = hearth_gguf::GgufFile::open(&path).expect("model file opens");
    Some(
        gguf.str("tokenizer.chat_template")
            .expect("model has a chat template")
            .to_owned(),
    )
}

const SMOL_SYSTEM: &str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

#[test]
fn smollm2_renders_chatml_like_hf() {
    let Some(source) = file_template("SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    // The template inserts its default system prompt when none is given.
    assert!(source.contains(SMOL_SYSTEM), "{source}");
    let t = ChatTemplate::new(&source, "<|im_start|>", "<|im_end|>").unwrap();
    assert_eq!(t.source(), source);

    let out = t.render(&[msg("user", "Hello")], true).unwrap();
    assert_eq!(
        out,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nHello<|im_end|>\n\
         <|im_start|>assistant\n"
    );

    let out = t.render(&[msg("user", "Hello")], false).unwrap();
    assert_eq!(
        out,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nHello<|im_end|>\n"
    );

    let out = t
        .render(
            &[
                msg("system", "Be terse."),
                msg("user", "What is 2+2?"),
                msg("assistant", "4"),
                msg("user", "And 3+3?"),
            ],
            true,
        )
        .unwrap();
    assert_eq!(
        out,
        "<|im_start|>system\nBe terse.<|im_end|>\n\
         <|im_start|>user\nWhat is 2+2?<|im_end|>\n\
         <|im_start|>assistant\n4<|im_end|>\n\
         <|im_start|>user\nAnd 3+3?<|im_end|>\n\
         <|im_start|>assistant\n"
    );

    // for_model prefers the file's template.
    let t2 = ChatTemplate::for_model(Some(&source), "llama", "<|im_start|>", "<|im_end|>").unwrap();
    assert_eq!(t2.source(), source);
}

#[test]
fn gemma3_file_has_no_template_so_builtin_is_used() {
    let path = models_dir().join("gemma-3-270m-q4_k_m.gguf");
    if !path.exists() {
        eprintln!("\n*** SKIPPED: {} not found ***\n", path.display());
        return;
    }
    let gguf = hearth_gguf::GgufFile::open(&path).unwrap();
    let arch = gguf.str("general.architecture").unwrap();
    let file_template = gguf.str_opt("tokenizer.chat_template").unwrap();
    let t = ChatTemplate::for_model(file_template, arch, "<bos>", "<eos>").unwrap();
    assert_eq!(
        t.render(&[msg("user", "Hi")], true).unwrap(),
        "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
        "arch {arch}, file template {file_template:?}"
    );
}

#[test]
fn template_is_shareable() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<ChatTemplate>();
    let t = gemma();
    let t2 = t.clone();
    let h = std::thread::spawn(move || t2.render(&[msg("user", "x")], false).unwrap());
    assert_eq!(
        h.join().unwrap(),
        t.render(&[msg("user", "x")], false).unwrap()
    );
}

fn gemma() -> ChatTemplate {
    ChatTemplate::builtin("gemma3", "<bos>", "<eos>").expect("gemma3 has a built-in template")
}

#[test]
fn gemma_single_turn() {
    let t = gemma();
    let m = [msg("user", "Hi")];
    assert_eq!(
        t.render(&m, true).unwrap(),
        "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    );
    assert_eq!(
        t.render(&m, false).unwrap(),
        "<bos><start_of_turn>user\nHi<end_of_turn>\n"
    );
}

#[test]
fn gemma_multi_turn() {
    let m = [
        msg("user", "Hi"),
        msg("assistant", "Hello! How can I help?"),
        msg("user", " What is Rust? \n"),
    ];
    assert_eq!(
        gemma().render(&m, true).unwrap(),
        "<bos><start_of_turn>user\nHi<end_of_turn>\n\
         <start_of_turn>model\nHello! How can I help?<end_of_turn>\n\
         <start_of_turn>user\nWhat is Rust?<end_of_turn>\n\
         <start_of_turn>model\n"
    );
    assert_eq!(
        gemma().render(&m[..2], false).unwrap(),
        "<bos><start_of_turn>user\nHi<end_of_turn>\n\
         <start_of_turn>model\nHello! How can I help?<end_of_turn>\n"
    );
}

#[test]
fn gemma_system_merged_into_first_user_turn() {
    let m = [
        msg("system", "Answer briefly."),
        msg("user", "Hi"),
        msg("assistant", "Hello."),
        msg("user", "Bye"),
    ];
    assert_eq!(
        gemma().render(&m, true).unwrap(),
        "<bos><start_of_turn>user\nAnswer briefly.\n\nHi<end_of_turn>\n\
         <start_of_turn>model\nHello.<end_of_turn>\n\
         <start_of_turn>user\nBye<end_of_turn>\n\
         <start_of_turn>model\n"
    );
    assert_eq!(
        gemma().render(&m[..2], false).unwrap(),
        "<bos><start_of_turn>user\nAnswer briefly.\n\nHi<end_of_turn>\n"
    );
}

#[test]
fn gemma_edge_cases() {
    let t = gemma();
    // Empty conversation: just BOS (and the generation prompt).
    assert_eq!(t.render(&[], false).unwrap(), "<bos>");
    assert_eq!(t.render(&[], true).unwrap(), "<bos><start_of_turn>model\n");
    // Roles must alternate, as in Gemma's official template.
    let err = t
        .render(&[msg("user", "a"), msg("user", "b")], true)
        .unwrap_err();
    match err {
        ChatError::Raised(m) => assert!(m.contains("alternate"), "{m}"),
        other => panic!("expected Raised, got {other:?}"),
    }
    for arch in ["gemma", "gemma2", "gemma3", "gemma3n"] {
        assert!(
            ChatTemplate::builtin(arch, "<bos>", "<eos>").is_some(),
            "{arch}"
        );
    }
    assert!(ChatTemplate::builtin("llama", "<s>", "</s>").is_none());
    // for_model: no file template (or a blank one) -> built-in.
    let t = ChatTemplate::for_model(None, "gemma3", "<bos>", "<eos>").unwrap();
    assert_eq!(t.source(), gemma().source());
    let t = ChatTemplate::for_model(Some("  "), "gemma3", "<bos>", "<eos>").unwrap();
    assert_eq!(t.source(), gemma().source());
}

#[test]
fn chatml_fallback() {
    let t = ChatTemplate::for_model(None, "some-new-arch", "<s>", "</s>").unwrap();
    assert_eq!(
        t.render(&[msg("system", "S"), msg("user", "U")], true)
            .unwrap(),
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn broken_template_is_an_error() {
    for src in [
        "{% for m in messages %}{{ m.content }}",
        "{{ ",
        "{% if %}x{% endif %}",
        "{% endfor %}",
    ] {
        let err = ChatTemplate::new(src, "", "").unwrap_err();
        assert!(matches!(err, ChatError::Compile(_)), "{src}: {err:?}");
        assert!(err.to_string().contains("does not compile"), "{err}");
        assert!(ChatTemplate::for_model(Some(src), "gemma3", "", "").is_err());
    }
    // Fails only at render time: an error, not a panic.
    let t = ChatTemplate::new("{{ messages[0].content + 1 }}", "", "").unwrap();
    let err = t.render(&[msg("user", "x")], false).unwrap_err();
    assert!(matches!(err, ChatError::Render(_)), "{err:?}");
}

#[test]
fn raise_exception_surfaces_message() {
    let src = "{% for m in messages %}{% if m.role == 'tool' %}\
               {{ raise_exception('Tool role ' ~ m.role ~ ' is not supported') }}\
               {% endif %}{{ m.content }}{% endfor %}";
    let t = ChatTemplate::new(src, "", "").unwrap();
    assert_eq!(t.render(&[msg("user", "ok")], false).unwrap(), "ok");
    let err = t
        .render(&[msg("user", "ok"), msg("tool", "x")], false)
        .unwrap_err();
    match &err {
        ChatError::Raised(m) => assert_eq!(m, "Tool role tool is not supported"),
        other => panic!("expected Raised, got {other:?}"),
    }
    assert!(err.to_string().contains("Tool role tool is not supported"));
}

#[test]
fn hf_environment_features() {
    // Python string methods (pycompat), bos/eos variables, trim/lstrip blocks,
    // strftime_now, namespace, slicing, loop helpers.
    let src = "{{ bos_token }}\n\
               {% set ns = namespace(n=0) %}\n\
               {% for m in messages[1:] %}\n\
                 {% set ns.n = ns.n + 1 %}\n\
                 {{ m.role.upper() }}:{{ m.content.strip() }}{% if m.content.startswith(' hi') %}!{% endif %}\n\
               {% endfor %}\n\
               {{ ns.n }}{{ eos_token }}{{ strftime_now('%Y')|length }}";
    let t = ChatTemplate::new(src, "<s>", "</s>").unwrap();
    let out = t
        .render(
            &[
                msg("system", "x"),
                msg("user", " hi "),
                msg("assistant", "yo"),
            ],
            false,
        )
        .unwrap();
    // trim_blocks eats the newline after `{% endif %}` (checked against Python Jinja2).
    assert_eq!(out, "<s>\nUSER:hi!ASSISTANT:yo2</s>4");
    // Dict methods through pycompat.
    let t = ChatTemplate::new(
        "{% for m in messages %}{% for k, v in m.items() %}{{ k }}={{ v }};{% endfor %}{% endfor %}",
        "",
        "",
    )
    .unwrap();
    let out = t.render(&[msg("user", "a")], false).unwrap();
    assert!(
        out.contains("role=user;") && out.contains("content=a;"),
        "{out}"
    );
}

#[test]
fn messages_deserialize_from_openai_json() {
    let m: Vec<ChatMessage> = serde_json::from_str(r#"[{"role":"user","content":"hi"}]"#).unwrap();
    assert_eq!(m, vec![msg("user", "hi")]);
}
