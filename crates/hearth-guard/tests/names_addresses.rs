//! Names and addresses through the operators: placeholders, and pseudonymization that
//! re-identifies to the exact original text.
#![allow(clippy::unwrap_used)]

use hearth_guard::{Anonymizer, Operator, PiiKind, Scanner, Vault};

const TEXT: &str = "Dear Hannah McConnan, your parcel for 1224 Diane Rue Suite 757\n\
Wilsonport, MS 45503 is late. 我叫王伟，地址：北京市朝阳区建国路88号3单元402室。\
Mr. Ferko Takáts and McConnan agreed.";

#[test]
fn placeholders_for_names_and_addresses() {
    let scanner = Scanner::with_kinds(&PiiKind::ALL);
    let findings = scanner.scan(TEXT);
    let out = Anonymizer::new(Operator::Placeholder)
        .anonymize(TEXT, &findings, None)
        .unwrap();
    assert_eq!(
        out,
        "Dear <PERSON_1>, your parcel for <ADDRESS_1> is late. 我叫<PERSON_2>，地址：<ADDRESS_2>。\
Mr. <PERSON_3> and <PERSON_4> agreed."
    );
    // Off by default.
    assert!(Scanner::new().scan(TEXT).is_empty());
}

#[test]
fn pseudonymize_round_trip_with_names_and_addresses() {
    let scanner = Scanner::with_kinds(&PiiKind::ALL);
    let findings = scanner.scan(TEXT);
    let kinds: Vec<PiiKind> = findings.iter().map(|f| f.kind).collect();
    assert!(kinds.contains(&PiiKind::Person) && kinds.contains(&PiiKind::Address));
    let mut vault = Vault::new(&[7u8; 32]);
    let masked = Anonymizer::new(Operator::Pseudonymize)
        .anonymize(TEXT, &findings, Some(&mut vault))
        .unwrap();
    for secret in ["McConnan", "Diane Rue", "王伟", "建国路", "Takáts"] {
        assert!(!masked.contains(secret), "{secret} left in {masked}");
    }
    assert_eq!(vault.reidentify(&masked).unwrap(), TEXT);
}
