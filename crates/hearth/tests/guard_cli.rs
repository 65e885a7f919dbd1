//! `hearth guard scan|redact` end to end.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn hearth(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    // The command may exit before reading (a flag error): a broken pipe is fine.
    let _ = pipe.write_all(stdin.unwrap_or("").as_bytes());
    drop(pipe);
    child.wait_with_output().unwrap()
}

const TEXT: &str = "Mail a@x.com or b@x.com, again a@x.com.\n\
                    no personal data here\n\
                    \n\
                    客户电话13812345678，身份证11010519491231002X\n\
                    card 4111 1111 1111 1111 from 10.0.0.1";

#[test]
fn redact_keeps_lines_and_numbers_placeholders() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.txt");
    std::fs::write(&path, TEXT).unwrap();
    let o = hearth(&["guard", "redact", path.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out.lines().count(), TEXT.lines().count());
    assert_eq!(
        out,
        "Mail <EMAIL_1> or <EMAIL_2>, again <EMAIL_1>.\n\
         no personal data here\n\
         \n\
         客户电话<PHONE_1>，身份证<CN_RESIDENT_ID_1>\n\
         card <CREDIT_CARD_1> from <IPV4_1>"
    );
}

#[test]
fn redact_reads_stdin_and_masks_or_hashes() {
    let o = hearth(
        &["guard", "redact", "-", "--operator", "mask"],
        Some("ip 10.0.0.1\n"),
    );
    assert!(o.status.success());
    assert_eq!(String::from_utf8(o.stdout).unwrap(), "ip ********\n");

    let o = hearth(
        &["guard", "redact", "-", "--operator", "hash", "--key", "k"],
        Some("a@x.com\na@x.com\n"),
    );
    assert!(o.status.success());
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], lines[1]);
    assert!(lines[0].starts_with("<EMAIL:"), "{out}");

    let o = hearth(&["guard", "redact", "-", "--operator", "hash"], Some("x"));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--key"));
}

#[test]
fn scan_json_gives_byte_spans_per_line() {
    let o = hearth(&["guard", "scan", "-", "--json"], Some(TEXT));
    assert!(o.status.success());
    let rows: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<(u64, &str)> = rows
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            (1, "EMAIL"),
            (1, "EMAIL"),
            (1, "EMAIL"),
            (4, "PHONE"),
            (4, "CN_RESIDENT_ID"),
            (5, "CREDIT_CARD"),
            (5, "IPV4"),
        ]
    );
    let line4 = TEXT.lines().nth(3).unwrap();
    let id = &rows[4];
    let (s, e) = (
        id["start"].as_u64().unwrap() as usize,
        id["end"].as_u64().unwrap() as usize,
    );
    assert_eq!(&line4[s..e], "11010519491231002X");
    assert!(id["score"].as_f64().unwrap() > 0.9);
}

#[test]
fn missing_file_is_named() {
    let o = hearth(&["guard", "scan", "/no/such/file.txt"], None);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/no/such/file.txt"));
}

#[test]
fn moderate_flags_lines_by_category() {
    let input = "the weather is nice\nI will kill you\n我不想活了\n";
    let out = hearth(&["guard", "moderate", "-"], Some(input));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("2: harassment, harassment/threatening"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("3: self-harm, self-harm/intent"),
        "{stdout}"
    );

    let out = hearth(&["guard", "moderate", "--json", "-"], Some(input));
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["flagged"], false);
    assert_eq!(rows[0]["scores"].as_object().unwrap().len(), 13);
    assert_eq!(rows[2]["line"], 3);
    assert!(rows[2]["scores"]["self-harm/intent"].as_f64().unwrap() >= 0.5);
}

#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.txt");
    let big: String = (0..200_000)
        .map(|i| format!("mail u{i}@x.com now\n"))
        .collect();
    std::fs::write(&path, big).unwrap();
    // `hearth guard redact big.txt | head -1`: the reader goes after one line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["guard", "redact", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "mail <EMAIL_1> now\n");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        out.status.signal(),
        Some(libc_sigpipe()),
        "{:?}",
        out.status
    );
}

/// SIGPIPE's number on Linux and the BSDs.
fn libc_sigpipe() -> i32 {
    13
}
